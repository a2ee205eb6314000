# Compiler options: warnings for our own targets only (authshim_target_options); sanitizers,
# fuzzing instrumentation and release hardening for every object.
include_guard(GLOBAL)

if(AUTHSHIM_SANITIZE)
    # Applied globally so every object, including the Asio/Beast implementation unit, agrees.
    add_compile_options(-fsanitize=${AUTHSHIM_SANITIZE} -fno-omit-frame-pointer
                        -fno-sanitize-recover=all)
    add_link_options(-fsanitize=${AUTHSHIM_SANITIZE})
endif()

if(AUTHSHIM_FUZZ)
    if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
        message(FATAL_ERROR "AUTHSHIM_FUZZ needs clang (libFuzzer): use the `fuzz` preset")
    endif()
    # Coverage instrumentation for libFuzzer in every object, the libraries under test included;
    # only the fuzz executables link libFuzzer itself (-fsanitize=fuzzer, tests/fuzz).
    add_compile_options(-fsanitize=fuzzer-no-link)
endif()

# authshim_target_options(<target>): warnings (as errors) and the project include root.
function(authshim_target_options target)
    if(CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
        target_compile_options(${target} PRIVATE -Wall -Wextra -Wconversion -Wshadow
                               -Wno-sign-conversion)
        if(AUTHSHIM_WERROR)
            target_compile_options(${target} PRIVATE -Werror)
        endif()
        if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
            # GCC 12 reports std::string copies as overlapping memcpy at -O2 (GCC PR 105329).
            # Asio's coroutine frame recycling trips -Wmismatched-new-delete in GCC 12 (a false
            # positive: the frame is allocated and freed by the same allocator).
            target_compile_options(${target} PRIVATE -Wno-restrict -Wno-mismatched-new-delete)
        endif()
    elseif(MSVC)
        target_compile_options(${target} PRIVATE /W4 /permissive- /utf-8)
        if(AUTHSHIM_WERROR)
            target_compile_options(${target} PRIVATE /WX)
        endif()
    endif()
endfunction()

# Builds that ship (no sanitizer, Linux, GCC): the hardening Debian's dpkg-buildflags gives its own
# packages (lintian checks for it): stack protector, stack-clash protection, CET (x86 only),
# _FORTIFY_SOURCE=2 when optimising (undefined first: some compilers predefine another level),
# full RELRO with immediate binding. Global, like the sanitizers, so that the Asio/Beast and
# cpp-httplib objects we compile get it too; these are code-generation options, not warnings.
if(NOT AUTHSHIM_SANITIZE AND NOT AUTHSHIM_FUZZ AND NOT WIN32 AND CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    add_compile_options(-fstack-protector-strong -fstack-clash-protection
                        $<$<NOT:$<CONFIG:Debug>>:-U_FORTIFY_SOURCE>
                        $<$<NOT:$<CONFIG:Debug>>:-D_FORTIFY_SOURCE=2>)
    if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|AMD64|i.86)$")
        add_compile_options(-fcf-protection)
    endif()
    add_link_options(-Wl,-z,relro -Wl,-z,now)
endif()
