// tls/self_signed: makes a self-signed certificate for a host name, so the
// default configuration (and scripts/run) offers STARTTLS out of the box.
// Only used when a tls{} table says self_signed = true and its files do not
// exist yet: a production config points at real certificate files instead.
// Promises: an existing cert or key file is never overwritten; the key is
// written with mode 0600; both files appear complete or not at all (written
// to temporary names, then renamed); the certificate is valid for a year,
// for `host_name` (CN and subjectAltName) and the loopback addresses
// 127.0.0.1 and ::1 (subjectAltName), with a P-256 key.
#pragma once

#include <string>

namespace mailgate::tls {

// Makes the pair unless both files exist; "" or why not. Safe when several
// gateways start at once with the same paths (an flock on KEY.lock).
std::string ensure_self_signed(const std::string& cert_path, const std::string& key_path,
                               const std::string& host_name);

}  // namespace mailgate::tls
