# conf/server/install.cmake: the install layout (`cmake --install`, FHS) and the
# Debian package (`cpack -G DEB`). Included by the top-level CMakeLists.txt.
#
#   /usr/sbin/mailgate                          the binary
#   /usr/lib/mailgate/civetweb-openssl/         libssl.so/libcrypto.so forwarders
#                                               CivetWeb dlopen()s for HTTPS
#   /usr/share/mailgate/plugins/                shipped Lua plugins
#   /usr/share/mailgate/monitoring/             Grafana dashboard, alert rules
#   /etc/mailgate/mailgate.lua                  production config (conffile)
#   /lib/systemd/system/mailgate.service        the unit
#   /etc/logrotate.d/mailgate                   delivery log rotation
#   /usr/share/doc/mailgate/                    README, example config
# The spool (/var/spool/mailgate), state (/var/lib/mailgate: TLS pair) and log
# (/var/log/mailgate) directories belong to the `mailgate` user; the package's
# postinst makes them.

# Private libraries: /usr/lib/mailgate (not the multiarch libdir: nothing else
# may link them).
set(MAILGATE_LIBEXEC_DIR lib/mailgate)
set(MAILGATE_PACKAGE_CONTACT "mailgate maintainers <maintainers@mailgate.example.org>"
    CACHE STRING "Maintainer of the Debian package")
# Debian 12 keeps units in /lib/systemd/system (lintian); other prefixes get
# <prefix>/lib/systemd/system.
if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  set(MAILGATE_UNIT_DIR /lib/systemd/system)
else()
  set(MAILGATE_UNIT_DIR ${CMAKE_INSTALL_PREFIX}/lib/systemd/system)
endif()
# Absolute paths the config and unit name (GNUInstallDirs maps etc and var to
# /etc and /var for the /usr prefix).
set(MAILGATE_SBIN ${CMAKE_INSTALL_FULL_SBINDIR}/mailgate)
set(MAILGATE_ETC ${CMAKE_INSTALL_FULL_SYSCONFDIR}/mailgate)
set(MAILGATE_SPOOL ${CMAKE_INSTALL_FULL_LOCALSTATEDIR}/spool/mailgate)
set(MAILGATE_STATE ${CMAKE_INSTALL_FULL_LOCALSTATEDIR}/lib/mailgate)
set(MAILGATE_LOGS ${CMAKE_INSTALL_FULL_LOCALSTATEDIR}/log/mailgate)

# The installed binary finds its forwarders from its own location; the build
# tree's binary keeps $ORIGIN/civetweb-openssl (CMake rewrites the DT_RPATH at
# install time).
set_target_properties(mailgate PROPERTIES
  INSTALL_RPATH "\$ORIGIN/../${MAILGATE_LIBEXEC_DIR}/civetweb-openssl")
install(TARGETS mailgate RUNTIME DESTINATION ${CMAKE_INSTALL_SBINDIR})
install(TARGETS civetweb_libssl civetweb_libcrypto
        LIBRARY DESTINATION ${MAILGATE_LIBEXEC_DIR}/civetweb-openssl)
install(DIRECTORY ${CMAKE_SOURCE_DIR}/plugins/ DESTINATION ${CMAKE_INSTALL_DATADIR}/mailgate/plugins
        FILES_MATCHING PATTERN "*.lua")
install(DIRECTORY ${CMAKE_SOURCE_DIR}/monitoring/
        DESTINATION ${CMAKE_INSTALL_DATADIR}/mailgate/monitoring)

configure_file(${CMAKE_CURRENT_LIST_DIR}/mailgate.lua.in ${CMAKE_BINARY_DIR}/server/mailgate.lua @ONLY)
configure_file(${CMAKE_CURRENT_LIST_DIR}/mailgate.service.in ${CMAKE_BINARY_DIR}/server/mailgate.service @ONLY)
configure_file(${CMAKE_CURRENT_LIST_DIR}/mailgate.logrotate.in ${CMAKE_BINARY_DIR}/server/mailgate.logrotate @ONLY)
install(FILES ${CMAKE_BINARY_DIR}/server/mailgate.lua DESTINATION ${MAILGATE_ETC})
install(FILES ${CMAKE_BINARY_DIR}/server/mailgate.service DESTINATION ${MAILGATE_UNIT_DIR})
install(FILES ${CMAKE_BINARY_DIR}/server/mailgate.logrotate
        DESTINATION ${CMAKE_INSTALL_FULL_SYSCONFDIR}/logrotate.d RENAME mailgate)
# Debian's policy wants a copyright file and a (native package) changelog.gz.
string(TIMESTAMP MAILGATE_CHANGELOG_DATE "%a, %d %b %Y %H:%M:%S +0000" UTC)
file(WRITE ${CMAKE_BINARY_DIR}/server/changelog
     "mailgate (${PROJECT_VERSION}) unstable; urgency=medium\n\n"
     "  * Built from the mailgate source tree (see README.md, Status).\n\n"
     " -- ${MAILGATE_PACKAGE_CONTACT}  ${MAILGATE_CHANGELOG_DATE}\n")
file(ARCHIVE_CREATE OUTPUT ${CMAKE_BINARY_DIR}/server/changelog.gz
     PATHS ${CMAKE_BINARY_DIR}/server/changelog FORMAT raw COMPRESSION GZip)
install(FILES ${CMAKE_SOURCE_DIR}/README.md ${CMAKE_SOURCE_DIR}/conf/mailgate.lua
              ${CMAKE_CURRENT_LIST_DIR}/debian/copyright ${CMAKE_BINARY_DIR}/server/changelog.gz
        DESTINATION ${CMAKE_INSTALL_DOCDIR})

# Debian package: Depends computed by dpkg-shlibdeps from the binary and the
# forwarders; maintainer scripts make the user and directories, the TLS pair,
# and check the config before restarting on upgrade.
foreach(script postinst prerm postrm)
  configure_file(${CMAKE_CURRENT_LIST_DIR}/debian/${script}.in
                 ${CMAKE_BINARY_DIR}/server/debian/${script} @ONLY
                 FILE_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE
                                  WORLD_READ WORLD_EXECUTE)
endforeach()
file(WRITE ${CMAKE_BINARY_DIR}/server/debian/conffiles
     "${MAILGATE_ETC}/mailgate.lua\n${CMAKE_INSTALL_FULL_SYSCONFDIR}/logrotate.d/mailgate\n")

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME mailgate)
set(CPACK_PACKAGE_VENDOR "mailgate")
set(CPACK_PACKAGE_CONTACT "${MAILGATE_PACKAGE_CONTACT}")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "high-throughput SMTP gateway for bulk senders")
string(CONCAT CPACK_PACKAGE_DESCRIPTION
       "mailgate accepts mail over SMTP and HTTP, checks and routes it with Lua\n"
       "policy, keeps it in a RocksDB spool and delivers it to each recipient's\n"
       "mail server with retries, per-destination limits and bounces.")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION mail)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# adduser: postinst; the rest comes from dpkg-shlibdeps.
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser")
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${CMAKE_BINARY_DIR}/server/debian/postinst ${CMAKE_BINARY_DIR}/server/debian/prerm
    ${CMAKE_BINARY_DIR}/server/debian/postrm ${CMAKE_BINARY_DIR}/server/debian/conffiles)
set(CPACK_STRIP_FILES ON)
include(CPack)
