// dkim: RFC 6376 DKIM signing with rsa-sha256 and ed25519-sha256 (RFC 8463):
// canonicalisation and the streaming body hash, keys from PEM files and
// their cache, and the DKIM-Signature field. The submission stage (submit/)
// signs with it; `mailgate dkim keygen` makes keys with it. The module's
// public interface is this header and the ones it includes.
#pragma once

#include "dkim/canonicalization.hpp"
#include "dkim/key_cache.hpp"
#include "dkim/signer.hpp"
#include "dkim/signing_key.hpp"
