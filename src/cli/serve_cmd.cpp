// recur serve MODEL.safetensors [NAME=MODEL ...] [--host H] [--port P] [--token T] ...
// Serves models over HTTP with the KServe v2 / Triton REST protocol (src/serve, docs/SERVE.md).
#include <fmt/core.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.hpp"
#include "cli/model_io.hpp"
#include "recur/error.hpp"
#include "serve/server.hpp"

namespace recur::cli {

namespace {

struct ServeCliOptions {
  std::vector<std::string> models;
  serve::ServeOptions serve;
  double max_body_mb = 16;
  bool quiet = false;
  std::string precision = "fp32";
};

// "NAME=PATH", or a bare path named after its file ("runs/lstm/best.safetensors" -> "best"),
// or its folder when the file is best/last ("runs/lstm/best.safetensors" -> "lstm").
serve::NamedModel named(const std::string& arg) {
  namespace fs = std::filesystem;
  const auto eq = arg.find('=');
  if (eq != std::string::npos && eq > 0 && arg.find('/') > eq)
    return {arg.substr(0, eq), arg.substr(eq + 1)};
  const fs::path p(arg);
  std::string name = p.stem().string();
  if ((name == "best" || name == "last") && p.has_parent_path() &&
      !p.parent_path().filename().empty())
    name = p.parent_path().filename().string();
  return {name, arg};
}

int run_serve(ServeCliOptions& o) {
  RECUR_CHECK(o.serve.port >= 0 && o.serve.port <= 65535, "--port",
              fmt::format("{} is not a port (0 to 65535; 0 picks a free one)", o.serve.port));
  require_positive("--max-batch", o.serve.batch.max_batch);
  RECUR_CHECK(o.serve.batch.max_delay_us >= 0 && o.serve.batch.max_delay_us <= 1000000,
              "--max-delay-us", "must be in [0, 1000000]");
  require_positive("--workers", o.serve.batch.workers);
  require_positive("--max-sessions", o.serve.sessions.max_sessions);
  RECUR_CHECK(o.serve.sessions.idle_s > 0, "--session-idle-s", "must be positive");
  RECUR_CHECK(o.max_body_mb > 0 && o.max_body_mb <= 1024, "--max-body-mb", "must be in (0, 1024]");
  require_positive("--timeout-s", o.serve.timeout_s);
  require_positive("--http-threads", o.serve.http_threads);
  require_positive("--io-threads", o.serve.io_threads);
  o.serve.max_body_bytes = static_cast<std::size_t>(o.max_body_mb * (1 << 20));
  o.serve.log_requests = !o.quiet;
  o.serve.precision = parse_infer_precision(o.precision);  // Error("--precision", ...)
  std::vector<serve::NamedModel> models;
  for (const std::string& m : o.models) models.push_back(named(m));
  return serve::serve(models, o.serve, stdout);
}

}  // namespace

void add_serve_command(CLI::App& app, Runner& run) {
  auto o = std::make_shared<ServeCliOptions>();
  CLI::App* cmd = app.add_subcommand(
      "serve",
      "Serve models over HTTP (KServe v2 / Triton REST protocol, streaming sessions, pages)");
  cmd->add_option("models", o->models,
                  "Checkpoints to serve, each MODEL.safetensors or NAME=MODEL.safetensors")
      ->required();
  cmd->add_option("--host", o->serve.host, "Address to listen on")->capture_default_str();
  cmd->add_option("--port", o->serve.port, "Port to listen on (0: any free port)")
      ->capture_default_str();
  cmd->add_option("--token", o->serve.token,
                  "Require 'Authorization: Bearer TOKEN' (all but health checks and pages)");
  cmd->add_option("--max-batch", o->serve.batch.max_batch,
                  "Most samples joined into one forward pass")
      ->capture_default_str();
  cmd->add_option("--max-delay-us", o->serve.batch.max_delay_us,
                  "Longest wait (microseconds) for a batch to fill")
      ->capture_default_str();
  cmd->add_option("--workers", o->serve.batch.workers, "Forward passes at once per model")
      ->capture_default_str();
  cmd->add_option("--max-sessions", o->serve.sessions.max_sessions,
                  "Most streaming sessions open per model")
      ->capture_default_str();
  cmd->add_option("--session-idle-s", o->serve.sessions.idle_s,
                  "Seconds after which an untouched session expires")
      ->capture_default_str();
  cmd->add_option("--max-body-mb", o->max_body_mb, "Largest request body (MiB); larger: 413")
      ->capture_default_str();
  cmd->add_option("--timeout-s", o->serve.timeout_s, "Seconds to read a request or write an answer")
      ->capture_default_str();
  cmd->add_option("--io-threads", o->serve.io_threads,
                  "Event loops reading requests and writing answers (connections cost no thread)")
      ->capture_default_str();
  cmd->add_option("--http-threads", o->serve.http_threads,
                  "Threads for requests that wait: streaming steps, texts, pictures")
      ->capture_default_str();
  cmd->add_option("--precision", o->precision,
                  "fp32, or int8: the recurrent and linear layers quantized at load "
                  "(docs/INFERENCE.md)")
      ->capture_default_str();
  cmd->add_flag("--quiet", o->quiet, "No log line per request");
  cmd->callback([o, &run] { run = [o] { return run_serve(*o); }; });
}

}  // namespace recur::cli
