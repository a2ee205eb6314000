# Compiler options shared by our own targets (never applied to third-party code).
include_guard(GLOBAL)

if(AUTHSHIM_SANITIZE)
    # Applied globally so every object, including the Asio/Beast implementation unit, agrees.
    add_compile_options(-fsanitize=${AUTHSHIM_SANITIZE} -fno-omit-frame-pointer
                        -fno-sanitize-recover=all)
    add_link_options(-fsanitize=${AUTHSHIM_SANITIZE})
endif()

# authshim_target_options(<target>): warnings (as errors) and the project include root.
function(authshim_target_options target)
    if(CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
        target_compile_options(${target} PRIVATE -Wall -Wextra -Wconversion -Wshadow
                               -Wno-sign-conversion)
        if(AUTHSHIM_WERROR)
            target_compile_options(${target} PRIVATE -Werror)
        endif()
    elseif(MSVC)
        target_compile_options(${target} PRIVATE /W4 /permissive- /utf-8)
        if(AUTHSHIM_WERROR)
            target_compile_options(${target} PRIVATE /WX)
        endif()
    endif()
endfunction()
