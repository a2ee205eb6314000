# The Windows installer (MSI), for builds of authshim.exe made on Linux (the mingw preset): target
# `msi` builds authshim-<version>-x64.msi in the build folder with scripts/msi.sh (wixl from
# packaging/windows/authshim.wxs); part of `all` when AUTHSHIM_MSI is ON. Signed when the
# AUTHSHIM_SIGN_* environment variables are set at build time (see scripts/msi.sh).
# MSVC builds on Windows have no wixl: there the option is OFF.
if(CMAKE_HOST_UNIX)
    option(AUTHSHIM_MSI "Build the MSI (needs wixl and msitools)" ON)
else()
    option(AUTHSHIM_MSI "Build the MSI (needs wixl and msitools)" OFF)
endif()
if(NOT AUTHSHIM_MSI)
    return()
endif()

find_program(AUTHSHIM_WIXL wixl)
find_program(AUTHSHIM_MSIBUILD msibuild)
if(NOT AUTHSHIM_WIXL OR NOT AUTHSHIM_MSIBUILD)
    message(FATAL_ERROR "The MSI needs wixl and msibuild (apt-get install wixl msitools), or "
                        "configure with -DAUTHSHIM_MSI=OFF")
endif()

set(AUTHSHIM_MSI_FILE ${CMAKE_BINARY_DIR}/authshim-${PROJECT_VERSION}-x64.msi)
# Built on every build (about a second): whether it is signed depends on environment variables,
# which no file dependency can see.
add_custom_target(msi ALL
    COMMAND bash ${PROJECT_SOURCE_DIR}/scripts/msi.sh --exe $<TARGET_FILE:authshim>
            --version ${PROJECT_VERSION} --out ${AUTHSHIM_MSI_FILE}
    BYPRODUCTS ${AUTHSHIM_MSI_FILE}
    DEPENDS authshim
    COMMENT "Building the MSI ${AUTHSHIM_MSI_FILE}"
    VERBATIM)
