# Install layout (Linux) and the Debian package (CPack DEB), included by the top-level
# CMakeLists.txt on non-Windows builds; packaging/windows/ has the MSI.
#   cmake --build build/release --target authshim
#   cpack --config build/release/CPackConfig.cmake -B build/release/pkg   (or scripts/deb.sh)
# The package version is project(VERSION) in CMakeLists.txt, as are `authshim --version` and the
# MSI's ProductVersion: one version. It is native (no Debian revision), so its changelog is
# /usr/share/doc/authshim/changelog.gz.
include_guard(GLOBAL)
include(GNUInstallDirs)

install(TARGETS authshim RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
# After the strip (CPACK_STRIP_FILES, `cmake --install --strip`), drop the .comment and .note
# sections as dh_strip does (lintian: binary-has-unneeded-section); crt*.o bring GCC's .comment,
# so -fno-ident cannot.
install(CODE "
    if(CMAKE_INSTALL_DO_STRIP)
        execute_process(COMMAND objcopy --remove-section=.comment --remove-section=.note
                                \"\$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_BINDIR}/authshim\"
                        COMMAND_ERROR_IS_FATAL ANY)
    endif()
")
# Outside the /usr prefix, where Debian wants them: the configuration and the unit. The
# configuration is installed only where there is none, so that `cmake --install` never replaces
# an admin's file (in the package it is a conffile: dpkg keeps an edited one on upgrade).
install(CODE "
    if(EXISTS \"\$ENV{DESTDIR}/etc/authshim/authshim.json\")
        message(STATUS \"Kept: \$ENV{DESTDIR}/etc/authshim/authshim.json (never replaced)\")
    else()
        file(INSTALL DESTINATION /etc/authshim TYPE FILE RENAME authshim.json
             FILES \"${PROJECT_SOURCE_DIR}/packaging/authshim.example.json\")
    endif()
")
install(FILES ${PROJECT_SOURCE_DIR}/packaging/authshim.service DESTINATION /lib/systemd/system)

# The changelog and the man page carry the version; their date is SOURCE_DATE_EPOCH's when set
# (reproducible builds), else the configure time. Compressed with gzip -9n (no name, no time).
set(deb_docs ${PROJECT_BINARY_DIR}/packaging)
string(TIMESTAMP AUTHSHIM_CHANGELOG_DATE "%a, %d %b %Y %H:%M:%S +0000" UTC)
string(TIMESTAMP AUTHSHIM_MAN_DATE "%Y-%m-%d" UTC)
# The Maintainer field and the changelog's signature: a site that builds its own packages sets
# its own (-DAUTHSHIM_PACKAGE_CONTACT="Team <team@corp.example.net>").
set(AUTHSHIM_PACKAGE_CONTACT "The authshim authors <authshim@example.org>"
    CACHE STRING "Maintainer of the Debian package (name <address>)")
configure_file(${PROJECT_SOURCE_DIR}/packaging/deb/changelog.in ${deb_docs}/changelog @ONLY)
configure_file(${PROJECT_SOURCE_DIR}/packaging/authshim.1.in ${deb_docs}/authshim.1 @ONLY)
foreach(doc changelog authshim.1)
    execute_process(COMMAND gzip -9n -c ${deb_docs}/${doc} OUTPUT_FILE ${deb_docs}/${doc}.gz
                    COMMAND_ERROR_IS_FATAL ANY)
endforeach()
install(FILES ${PROJECT_SOURCE_DIR}/packaging/deb/copyright ${deb_docs}/changelog.gz
        DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/doc/authshim)
install(FILES ${deb_docs}/authshim.1.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME authshim)
set(CPACK_PACKAGE_VENDOR "The authshim authors")
set(CPACK_PACKAGE_CONTACT "${AUTHSHIM_PACKAGE_CONTACT}")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "local proxy answering an upstream proxy's authentication")
set(CPACK_PACKAGE_DESCRIPTION
    "authshim listens on 127.0.0.1:3128 and forwards every request, plain HTTP
and CONNECT tunnels, to an upstream proxy, answering its 407 Proxy
Authentication Required (Basic, Digest) with stored machine credentials, so
that services which cannot authenticate to a proxy themselves can use it.
A rejected credential is not sent again until it changes, so a wrong
password cannot lock the account.")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT) # authshim_<version>_<arch>.deb
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON) # Depends: from dpkg-shlibdeps
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${PROJECT_SOURCE_DIR}/packaging/deb/conffiles
    ${PROJECT_SOURCE_DIR}/packaging/deb/postinst
    ${PROJECT_SOURCE_DIR}/packaging/deb/prerm
    ${PROJECT_SOURCE_DIR}/packaging/deb/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON) # scripts 0755, the rest 0644
include(CPack)
