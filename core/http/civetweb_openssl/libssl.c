/* http/civetweb_openssl/libssl.c: the "libssl.so" that CivetWeb loads.
 *
 * Debian's libcivetweb 1.15 is built to load OpenSSL at run time, by name:
 * dlopen("libcrypto.so") and dlopen("libssl.so"), then dlsym of each function
 * it uses. Two things break that on Debian 12: those unversioned names are
 * only the development symlinks (libssl-dev), and CivetWeb was built for the
 * OpenSSL 1.1 API, so it also needs SSL_get_peer_certificate, which OpenSSL 3
 * no longer exports (it became SSL_get1_peer_certificate). Either way mg_start
 * fails for an "s" (HTTPS) port.
 *
 * So the build makes two small libraries named libssl.so and libcrypto.so in
 * build/civetweb-openssl/ and gives the mailgate executable a DT_RPATH
 * ($ORIGIN/civetweb-openssl, linked with --disable-new-dtags): glibc searches
 * the executable's DT_RPATH for a dlopen from a library without DT_RUNPATH
 * (libcivetweb has none) before any system directory. This one depends on
 * libssl.so.3 (libssl3, a runtime package) and adds the one missing symbol;
 * dlsym on it finds everything else in libssl.so.3, the copy the process has
 * already loaded, so CivetWeb runs the SSL_CTX that core/tls built.
 *
 * Promises: nothing but forwarding; the same OpenSSL as the rest of mailgate. */
#include <openssl/ssl.h>

/* OpenSSL 3's header makes the old name a macro for the new one. */
#undef SSL_get_peer_certificate

/* OpenSSL 1.1's SSL_get_peer_certificate returned a reference the caller
 * frees, exactly as SSL_get1_peer_certificate does. */
X509 *SSL_get_peer_certificate(const SSL *ssl);
X509 *SSL_get_peer_certificate(const SSL *ssl) { return SSL_get1_peer_certificate(ssl); }
