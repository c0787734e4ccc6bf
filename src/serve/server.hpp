// `recur serve`: models behind the KServe v2 / Triton REST protocol (protocol.hpp), with dynamic
// batching (batcher.hpp), streaming sessions (sessions.hpp), Prometheus metrics (metrics.hpp)
// and the pages (pages.hpp). The HTTP layer (http.hpp) is event-driven, on Boost.Beast
// (Debian's libboost-dev): docs/SERVE.md says why.
#pragma once

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "recur/predictor.hpp"
#include "serve/batcher.hpp"
#include "serve/sessions.hpp"

namespace recur::serve {

struct ServeOptions {
  std::string host = "127.0.0.1";
  int port = 8080;    // 0: any free port (printed)
  std::string token;  // non-empty: every request but health and pages needs "Bearer TOKEN"
  BatchOptions batch;
  SessionOptions sessions;
  std::size_t max_body_bytes = 16u << 20;
  int timeout_s = 30;     // reading a request, writing an answer
  int io_threads = 2;     // event loops reading and writing the connections
  int http_threads = 64;  // the pool of requests that wait (streaming steps, texts, pictures)
  bool log_requests = true;
  // fp32, or int8 (every model quantized at load, as `recur predict --precision int8`).
  InferPrecision precision = InferPrecision::fp32;
};

struct NamedModel {
  std::string name;
  std::string path;
};

// Loads the models, listens, prints the URL and the models on `out`, logs one line per request
// there, and returns 0 once SIGINT or SIGTERM has come and the requests in flight are answered.
// Throws Error for a model that does not load, a bad name, or an address it cannot bind.
int serve(const std::vector<NamedModel>& models, const ServeOptions& options, std::FILE* out);

}  // namespace recur::serve
