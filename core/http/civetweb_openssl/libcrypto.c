/* http/civetweb_openssl/libcrypto.c: the "libcrypto.so" that CivetWeb loads
 * (see libssl.c): no code of its own, only a dependency on libcrypto.so.3, so
 * dlsym on it finds OpenSSL 3's functions. Promises: nothing else. */
const char mailgate_civetweb_libcrypto[] = "libcrypto.so.3 for CivetWeb";
