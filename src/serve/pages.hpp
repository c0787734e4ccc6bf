// The pages `recur serve` shows people, built into the binary: / lists the models, /digits lets
// a person draw a digit and watch an image-row model read it row by row (through a streaming
// session), /text classifies a review as it is typed. Scripts and styles are served from
// /static/ under a strict Content-Security-Policy: no inline script, no outside asset.
#pragma once

#include <string>
#include <vector>

namespace recur::serve {

inline constexpr const char* kContentSecurityPolicy =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

struct PageModel {
  std::string name;
  std::string kind;  // to_string(InputKind)
  bool streamable = false;
  std::string not_streamable;
};

struct Page {
  std::string content_type;
  std::string body;  // empty: no such page
};

bool is_page_path(const std::string& path);
Page find_page(const std::string& path, const std::vector<PageModel>& models);

}  // namespace recur::serve
