# What `cmake --install` puts where (relative to the prefix, GNUInstallDirs), and the Debian
# package `cpack` builds from it (scripts/package). docs/operations.md shows both in use.
include(GNUInstallDirs)

set(FERRY_SYSTEMD_UNIT_DIR "lib/systemd/system" CACHE STRING
  "Directory for ferryd.service and ferryd.socket: relative to the install prefix, or absolute")

install(TARGETS ferryd ferry RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(FILES docs/man/ferry.1 DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
install(FILES docs/man/ferryd.conf.5 DESTINATION ${CMAKE_INSTALL_MANDIR}/man5)
install(FILES docs/man/ferryd.8 DESTINATION ${CMAKE_INSTALL_MANDIR}/man8)
install(FILES config/bash-completion/ferry config/bash-completion/ferryd
  DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions)
file(GLOB ferry_docs CONFIGURE_DEPENDS docs/*.md)
install(FILES README.md ${ferry_docs} DESTINATION ${CMAKE_INSTALL_DOCDIR})

# The configuration file and the units depend on the prefix in effect when installing (a
# `cmake --install --prefix` overrides the configured one), so they are placed then, by
# cmake/install_prefix_files.cmake.
install(CODE "
  set(FERRY_SOURCE_DIR \"${PROJECT_SOURCE_DIR}\")
  set(FERRY_BINARY_DIR \"${PROJECT_BINARY_DIR}\")
  set(FERRY_BINDIR \"${CMAKE_INSTALL_BINDIR}\")
  set(FERRY_DOCDIR \"${CMAKE_INSTALL_DOCDIR}\")
  set(FERRY_SYSTEMD_UNIT_DIR \"${FERRY_SYSTEMD_UNIT_DIR}\")")
install(SCRIPT cmake/install_prefix_files.cmake)

# The Debian package: ferry_VERSION_ARCH.deb, installed under /usr with the configuration in
# /etc. DESTDIR staging makes CMAKE_INSTALL_PREFIX /usr while installing, so the unit names
# /usr/bin/ferryd and the configuration lands in /etc.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME ferry)
set(CPACK_PACKAGE_VENDOR "Ferry")
set(CPACK_PACKAGE_CONTACT "Ferry maintainers <maintainers@users.noreply.r-seed-aa3a6275.example>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "file-download server (ferryd) and client (ferry)")
set(CPACK_PACKAGE_DESCRIPTION
  "ferryd serves one directory over the Ferry protocol and HTTP/1.1 on one port, confined to\n\
its root, with sendfile, limits, timeouts and a graceful drain. ferry downloads from it (or any\n\
HTTP/1.1 server) safely and fast: verified, resumable, segmented; ferry bench load-tests.")
set(CPACK_SET_DESTDIR ON)
set(CPACK_INSTALL_PREFIX /usr)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
  ${PROJECT_SOURCE_DIR}/config/deb/conffiles
  ${PROJECT_SOURCE_DIR}/config/deb/postinst
  ${PROJECT_SOURCE_DIR}/config/deb/prerm
  ${PROJECT_SOURCE_DIR}/config/deb/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
