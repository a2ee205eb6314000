# CMake toolchain file: cross-build authshim for 64-bit Windows with mingw-w64 (posix threads,
# Debian packages g++-mingw-w64-x86-64-posix and mingw-w64). Tests run through Wine.
#
#   cmake --preset mingw        (or: cmake -S . -B build/mingw --toolchain cmake/mingw-w64-x86_64.cmake)
#
# OpenSSL: set OPENSSL_ROOT_DIR to the prefix scripts/build-openssl-mingw.sh printed; when unset,
# the newest complete build in $AUTHSHIM_CACHE (default ~/.cache/authshim) is used.
# Header-only third-party libraries come from the build host through an isolated include folder
# (cmake/authshim_dependencies.cmake), never from /usr/include itself.
set(CMAKE_SYSTEM_NAME Windows)
set(CMAKE_SYSTEM_PROCESSOR x86_64)

set(AUTHSHIM_MINGW_PREFIX x86_64-w64-mingw32)
set(CMAKE_C_COMPILER ${AUTHSHIM_MINGW_PREFIX}-gcc-posix)
set(CMAKE_CXX_COMPILER ${AUTHSHIM_MINGW_PREFIX}-g++-posix)
set(CMAKE_RC_COMPILER ${AUTHSHIM_MINGW_PREFIX}-windres)
set(AUTHSHIM_WINDMC ${AUTHSHIM_MINGW_PREFIX}-windmc CACHE FILEPATH "mingw message compiler")

if(NOT OPENSSL_ROOT_DIR)
    if(DEFINED ENV{AUTHSHIM_CACHE})
        set(_authshim_cache "$ENV{AUTHSHIM_CACHE}")
    else()
        set(_authshim_cache "$ENV{HOME}/.cache/authshim")
    endif()
    file(GLOB _authshim_openssl_stamps "${_authshim_cache}/openssl-mingw64-*/.complete")
    if(_authshim_openssl_stamps)
        list(SORT _authshim_openssl_stamps COMPARE NATURAL ORDER DESCENDING)
        list(GET _authshim_openssl_stamps 0 _authshim_stamp)
        get_filename_component(_authshim_openssl "${_authshim_stamp}" DIRECTORY)
        set(OPENSSL_ROOT_DIR "${_authshim_openssl}" CACHE PATH "OpenSSL for mingw")
    endif()
endif()

set(CMAKE_FIND_ROOT_PATH /usr/${AUTHSHIM_MINGW_PREFIX} ${OPENSSL_ROOT_DIR})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# One self-contained exe: no libstdc++/libgcc/winpthread DLLs next to it.
set(CMAKE_EXE_LINKER_FLAGS_INIT "-static")
set(OPENSSL_USE_STATIC_LIBS TRUE)

find_program(AUTHSHIM_WINE NAMES wine64 wine)
if(AUTHSHIM_WINE)
    set(CMAKE_CROSSCOMPILING_EMULATOR ${AUTHSHIM_WINE})
endif()
