# Runs while installing (cmake --install, cpack), when CMAKE_INSTALL_PREFIX is the prefix given
# then: places the configuration file and the systemd units, the units' paths rewritten for it.
# config/ferryd.service is the unit for the prefix /usr (what the Debian package installs).

# GNUInstallDirs' rule: the prefix /usr keeps its configuration in /etc; any other prefix in
# PREFIX/etc (so `cmake --install --prefix DIR` writes nothing outside DIR).
if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  set(ferry_confdir /etc/ferry)
else()
  set(ferry_confdir "${CMAKE_INSTALL_PREFIX}/etc/ferry")
endif()
if(IS_ABSOLUTE "${FERRY_SYSTEMD_UNIT_DIR}")
  set(ferry_unitdir "${FERRY_SYSTEMD_UNIT_DIR}")
else()
  set(ferry_unitdir "${CMAKE_INSTALL_PREFIX}/${FERRY_SYSTEMD_UNIT_DIR}")
endif()

file(INSTALL DESTINATION "${ferry_confdir}" TYPE FILE FILES "${FERRY_SOURCE_DIR}/config/ferryd.conf")

# One staging directory per destination: two installs at once (a test and cpack) never share it.
string(MD5 ferry_stage "$ENV{DESTDIR}${ferry_unitdir}")
set(ferry_stage "${FERRY_BINARY_DIR}/installed-units/${ferry_stage}")
set(ferry_units ferryd.service)
# ferryd.socket (socket activation) is installed once config/ holds it.
if(EXISTS "${FERRY_SOURCE_DIR}/config/ferryd.socket")
  list(APPEND ferry_units ferryd.socket)
endif()
foreach(unit IN LISTS ferry_units)
  file(READ "${FERRY_SOURCE_DIR}/config/${unit}" text)
  string(REPLACE "/usr/bin/ferryd" "${CMAKE_INSTALL_PREFIX}/${FERRY_BINDIR}/ferryd" text "${text}")
  string(REPLACE "/etc/ferry/" "${ferry_confdir}/" text "${text}")
  string(REPLACE "/usr/share/doc/ferry/" "${CMAKE_INSTALL_PREFIX}/${FERRY_DOCDIR}/" text "${text}")
  file(WRITE "${ferry_stage}/${unit}" "${text}")
  file(INSTALL DESTINATION "${ferry_unitdir}" TYPE FILE FILES "${ferry_stage}/${unit}")
endforeach()
