# Third-party dependencies. On Debian 12 they come from packages (scripts/setup.sh installs them);
# MSVC users get them from the vcpkg manifest (vcpkg.json).
include_guard(GLOBAL)

find_package(Threads REQUIRED)
find_package(OpenSSL 3 REQUIRED)

if(CMAKE_CROSSCOMPILING AND MINGW)
    # mingw-w64 cross-build (cmake/mingw-w64-x86_64.cmake): the header-only libraries come from the
    # build host's Debian packages through a folder holding only links to them. /usr/include itself
    # must never be on the path: glibc's (or Linux OpenSSL's) headers would be picked up.
    set(AUTHSHIM_HOST_INCLUDE /usr/include CACHE PATH "where the host's header-only libraries are")
    set(_third_party ${CMAKE_BINARY_DIR}/third_party_include)
    file(MAKE_DIRECTORY ${_third_party})
    foreach(dir boost nlohmann spdlog fmt catch2)
        if(NOT EXISTS ${AUTHSHIM_HOST_INCLUDE}/${dir})
            message(FATAL_ERROR "${AUTHSHIM_HOST_INCLUDE}/${dir} is missing (scripts/setup.sh)")
        endif()
        file(CREATE_LINK ${AUTHSHIM_HOST_INCLUDE}/${dir} ${_third_party}/${dir} SYMBOLIC)
    endforeach()
    file(CREATE_LINK ${AUTHSHIM_HOST_INCLUDE}/httplib.h ${_third_party}/httplib.h SYMBOLIC)
    add_library(authshim_third_party INTERFACE)
    target_include_directories(authshim_third_party SYSTEM INTERFACE ${_third_party})
    add_library(Boost::headers ALIAS authshim_third_party)
    add_library(nlohmann_json::nlohmann_json ALIAS authshim_third_party)
    add_library(Catch2::Catch2 ALIAS authshim_third_party)
    # Debian's spdlog is built against an external fmt: both header-only here.
    add_library(authshim_spdlog INTERFACE)
    target_link_libraries(authshim_spdlog INTERFACE authshim_third_party)
    # SPDLOG_WCHAR_FILENAMES: log files are opened by their UTF-16 name (any path works).
    target_compile_definitions(authshim_spdlog INTERFACE SPDLOG_HEADER_ONLY FMT_HEADER_ONLY
                               SPDLOG_WCHAR_FILENAMES)
    add_library(spdlog::spdlog ALIAS authshim_spdlog)
    # Static OpenSSL needs these system libraries after it.
    set_property(TARGET OpenSSL::Crypto APPEND PROPERTY INTERFACE_LINK_LIBRARIES
                 ws2_32 crypt32 bcrypt advapi32 user32)
else()
    find_package(Boost 1.81 REQUIRED)
    find_package(nlohmann_json 3 REQUIRED)
    find_package(spdlog REQUIRED)
endif()

# cpp-httplib (admin endpoint only): header-only, in the host's /usr/include (linked into
# third_party_include for mingw) or from vcpkg.
add_library(cpp_httplib INTERFACE)
if(CMAKE_CROSSCOMPILING AND MINGW)
    target_link_libraries(cpp_httplib INTERFACE authshim_third_party ws2_32 crypt32)
else()
    find_path(AUTHSHIM_HTTPLIB_INCLUDE httplib.h REQUIRED)
    target_include_directories(cpp_httplib SYSTEM INTERFACE ${AUTHSHIM_HTTPLIB_INCLUDE})
    target_link_libraries(cpp_httplib INTERFACE Threads::Threads)
    if(WIN32)
        target_link_libraries(cpp_httplib INTERFACE ws2_32 crypt32)
    endif()
endif()

# Asio and Beast are compiled once, in proxycore/asio_impl.cpp.
add_library(authshim_boost INTERFACE)
target_link_libraries(authshim_boost INTERFACE Boost::headers Threads::Threads)
target_compile_definitions(authshim_boost INTERFACE
    BOOST_ASIO_SEPARATE_COMPILATION
    BOOST_BEAST_SEPARATE_COMPILATION
    BOOST_ASIO_NO_DEPRECATED)
if(WIN32)
    target_compile_definitions(authshim_boost INTERFACE _WIN32_WINNT=0x0A00 WIN32_LEAN_AND_MEAN
                               NOMINMAX BOOST_ALL_NO_LIB)
    target_link_libraries(authshim_boost INTERFACE ws2_32 mswsock)
endif()
