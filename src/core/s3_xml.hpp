// Just enough XML for S3's responses: the text of an element, and the
// blocks of a repeated element. S3 answers flat, predictable documents.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace so::s3xml {

// Text of the first <tag>...</tag> in xml, entities decoded; empty if none.
std::string text(std::string_view xml, std::string_view tag);
// The inner XML of every <tag>...</tag>, in order.
std::vector<std::string_view> blocks(std::string_view xml, std::string_view tag);
// Escapes &, <, >, " and ' for element text.
std::string escape(std::string_view s);

}  // namespace so::s3xml
