// mime/mime: the public face of the mime module: content and header encodings
// (encoding.hpp) and the structured-message builder behind the HTTP inject
// endpoint (message_builder.hpp). Include this one header.
// Promises: everything is in namespace mailgate::mime; the module depends on
// fmt only, so any other module may use it.
#pragma once

#include "mime/encoding.hpp"         // IWYU pragma: export
#include "mime/message_builder.hpp"  // IWYU pragma: export
