// mime/mime: the public face of the mime module: RFC 5322 dates (date.hpp),
// the end of the header section (header_section.hpp), content and header
// encodings (encoding.hpp) and the structured-message builder behind the HTTP
// inject endpoint (message_builder.hpp). Include this one header.
// Promises: everything is in namespace mailgate::mime; the module depends on
// fmt and text only, so any other module may use it.
#pragma once

#include "mime/date.hpp"             // IWYU pragma: export
#include "mime/encoding.hpp"         // IWYU pragma: export
#include "mime/header_section.hpp"   // IWYU pragma: export
#include "mime/message_builder.hpp"  // IWYU pragma: export
