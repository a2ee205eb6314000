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

# cpp-httplib (admin endpoint only): the whole single header of Debian's source package with
# Debian's patches (scripts/fetch-httplib.sh, cached in $AUTHSHIM_CACHE or ~/.cache/authshim, run
# here when the cache has none), compiled in without TLS, zlib or brotli, the same on Linux and
# in the Windows cross-build. Not Debian's libcpp-httplib.so: that one is built with OpenSSL,
# zlib and brotli, so it would load four more libraries and initialise OpenSSL at start-up
# (about 3.5 MB more resident memory for an endpoint that needs none of it), and its header
# holds declarations only. MSVC users get the library from vcpkg. The fuzz build
# (AUTHSHIM_FUZZ) has no admin endpoint and needs none of it.
if(AUTHSHIM_FUZZ)
    # nothing: tests/fuzz builds no target that uses cpp_httplib
elseif(MSVC)
    find_package(httplib CONFIG REQUIRED)
    add_library(cpp_httplib INTERFACE)
    target_link_libraries(cpp_httplib INTERFACE httplib::httplib)
else()
    if(DEFINED ENV{AUTHSHIM_CACHE})
        set(_authshim_cache "$ENV{AUTHSHIM_CACHE}")
    else()
        set(_authshim_cache "$ENV{HOME}/.cache/authshim")
    endif()
    if(NOT AUTHSHIM_HTTPLIB_DIR)
        file(GLOB _httplib_stamps "${_authshim_cache}/cpp-httplib-*/.complete")
        if(NOT _httplib_stamps)
            message(STATUS "cpp-httplib: fetching the header (scripts/fetch-httplib.sh)")
            execute_process(COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/../scripts/fetch-httplib.sh
                                    ${_authshim_cache}
                            RESULT_VARIABLE _httplib_rc ERROR_VARIABLE _httplib_err
                            OUTPUT_QUIET)
            if(NOT _httplib_rc EQUAL 0)
                message(FATAL_ERROR "scripts/fetch-httplib.sh failed:\n${_httplib_err}")
            endif()
            file(GLOB _httplib_stamps "${_authshim_cache}/cpp-httplib-*/.complete")
        endif()
        if(_httplib_stamps)
            list(SORT _httplib_stamps COMPARE NATURAL ORDER DESCENDING)
            list(GET _httplib_stamps 0 _httplib_stamp)
            get_filename_component(_httplib_dir "${_httplib_stamp}" DIRECTORY)
            set(AUTHSHIM_HTTPLIB_DIR "${_httplib_dir}" CACHE PATH "folder of the whole httplib.h")
        endif()
    endif()
    if(NOT AUTHSHIM_HTTPLIB_DIR OR NOT EXISTS "${AUTHSHIM_HTTPLIB_DIR}/httplib.h")
        message(FATAL_ERROR "the whole cpp-httplib header is missing: run scripts/fetch-httplib.sh "
                            "(or set AUTHSHIM_HTTPLIB_DIR to the folder holding httplib.h)")
    endif()
    message(STATUS "cpp-httplib: ${AUTHSHIM_HTTPLIB_DIR}")
    add_library(cpp_httplib INTERFACE)
    target_include_directories(cpp_httplib SYSTEM BEFORE INTERFACE ${AUTHSHIM_HTTPLIB_DIR})
    target_link_libraries(cpp_httplib INTERFACE Threads::Threads)
    if(WIN32)
        target_link_libraries(cpp_httplib INTERFACE ws2_32)
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
