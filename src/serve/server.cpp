// The HTTP layer of `recur serve` (server.hpp): routes, authorization, limits, logging and a
// clean stop on SIGINT / SIGTERM.
#include "serve/server.hpp"

#include <fmt/core.h>
#include <httplib.h>
#include <malloc.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include <atomic>
#include <chrono>
#include <csignal>
#include <map>
#include <mutex>
#include <regex>
#include <thread>

#include "recur/digit_frame.hpp"
#include "recur/error.hpp"
#include "recur/image.hpp"
#include "serve/metrics.hpp"
#include "serve/pages.hpp"
#include "serve/protocol.hpp"

namespace recur::serve {

namespace {

using nlohmann::json;

struct Model {
  std::string name;
  std::unique_ptr<Predictor> predictor;
  ModelShape shape;
  std::unique_ptr<Batcher> batcher;
  std::unique_ptr<SessionTable> sessions;
};

bool valid_name(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.')
      return false;
  return true;
}

bool is_png(const std::string& body) {
  return body.size() >= 8 && body.compare(0, 8, "\x89PNG\r\n\x1a\n") == 0;
}

bool wants_png(const httplib::Request& req) {
  const std::string type = req.get_header_value("Content-Type");
  return type.rfind("image/", 0) == 0 || type.rfind("application/octet-stream", 0) == 0;
}

int g_stop_pipe[2] = {-1, -1};

void on_stop_signal(int) {
  const char byte = 1;
  [[maybe_unused]] const auto n = ::write(g_stop_pipe[1], &byte, 1);
}

// Time the pre-routing handler saw the request arrive, for the log and the latency histogram.
thread_local std::chrono::steady_clock::time_point t_arrived;
thread_local std::string t_model;

class Server {
 public:
  Server(const std::vector<NamedModel>& named, const ServeOptions& options, std::FILE* out);
  int run();

 private:
  void routes();
  void guard();
  Model* model_or_404(const httplib::Request& req, httplib::Response& res);
  void infer(Model& m, const httplib::Request& req, httplib::Response& res);
  Predictions predict(Model& m, const InferRequest& r);
  std::vector<std::uint8_t> framed_png(const Model& m, const std::string& body);
  void log(const httplib::Request& req, const httplib::Response& res);

  ServeOptions options_;
  std::FILE* out_;
  std::vector<std::unique_ptr<Model>> models_;
  std::map<std::string, Model*> by_name_;
  Metrics metrics_;
  httplib::Server http_;
  std::mutex log_mutex_;
  std::atomic<bool> stopping_{false};
  int listen_socket_ = -1;
};

void send_error(httplib::Response& res, int status, const std::string& field,
                const std::string& reason) {
  res.status = status;
  res.set_content(error_body(field, reason).dump(), "application/json");
}

Server::Server(const std::vector<NamedModel>& named, const ServeOptions& options, std::FILE* out)
    : options_(options), out_(out) {
  RECUR_CHECK(!named.empty(), "serve", "give at least one model: recur serve MODEL.safetensors");
  for (const NamedModel& n : named) {
    RECUR_CHECK(valid_name(n.name), n.path,
                "the model name '" + n.name +
                    "' is not 1 to 64 letters, digits, '-', '_' or '.'; name it NAME=" + n.path);
    RECUR_CHECK(!by_name_.count(n.name), n.path,
                "the name '" + n.name + "' is given twice; name each model NAME=MODEL");
    auto m = std::make_unique<Model>();
    m->name = n.name;
    m->predictor = std::make_unique<Predictor>(n.path);
    m->shape = shape_of(*m->predictor);
    const std::string name = n.name;
    m->batcher = std::make_unique<Batcher>(
        *m->predictor, options_.batch,
        [this, name](std::int64_t samples) { metrics_.batch(name, samples); });
    if (m->shape.streamable)
      m->sessions = std::make_unique<SessionTable>(
          *m->predictor, options_.sessions, options_.batch,
          [this, name](std::int64_t sessions) { metrics_.session_batch(name, sessions); });
    by_name_[n.name] = m.get();
    models_.push_back(std::move(m));
  }
  routes();
  guard();
}

Model* Server::model_or_404(const httplib::Request& req, httplib::Response& res) {
  const std::string name = req.matches[1];
  const auto it = by_name_.find(name);
  if (it == by_name_.end()) {
    std::string known;
    for (const auto& m : models_) known += (known.empty() ? "" : ", ") + m->name;
    send_error(res, 404, "model", "no model is named '" + name + "' (served: " + known + ")");
    return nullptr;
  }
  t_model = name;
  return it->second;
}

std::vector<std::uint8_t> Server::framed_png(const Model& m, const std::string& body) {
  const bool image =
      m.shape.kind == InputKind::image_sequence || m.shape.kind == InputKind::whole_image;
  if (!image)
    throw BadRequest(415, "Content-Type",
                     m.name + " is not an image model; send JSON tensors (docs/SERVE.md)");
  if (!is_png(body)) throw BadRequest(400, "body", "is not a PNG image (no PNG signature)");
  const GrayImage img = decode_gray_image(body, "body");
  return frame_digit(img, m.shape.rows, m.shape.cols, Polarity::automatic, "body").pixels;
}

Predictions Server::predict(Model& m, const InferRequest& r) {
  switch (r.payload) {
    case Payload::images:
      return m.batcher->images(r.u8, r.count);
    case Payload::steps_f32:
      if (m.shape.kind == InputKind::image_sequence)
        return m.batcher->sequences(r.f32, r.count, r.steps);
      return m.predictor->predict_sequences(r.f32.data(), r.count, r.steps,
                                            r.lengths.empty() ? nullptr : r.lengths.data());
    case Payload::texts:
      return m.predictor->predict_texts(r.texts);
    case Payload::steps_u8:
    case Payload::tokens:
      break;
  }
  throw BadRequest(400, "parameters.sequence_id", "steps are fed to a stream: give a sequence_id");
}

void Server::infer(Model& m, const httplib::Request& req, httplib::Response& res) {
  try {
    InferRequest r;
    if (wants_png(req) || is_png(req.body)) {
      r.payload = Payload::images;
      r.count = 1;
      r.u8 = framed_png(m, req.body);
    } else {
      r = parse_infer_request(req.body, m.shape);
    }
    std::int64_t steps = -1;
    const Predictions p = r.sequence.present ? m.sessions->feed(r, steps) : predict(m, r);
    res.set_content(infer_response_text(m.name, r, p, steps), "application/json");
  } catch (const BadRequest& e) {
    send_error(res, e.status(), e.field(), e.reason());
  } catch (const Error& e) {
    // The Predictor's refusals (an empty text, an id out of range, a picture without ink).
    send_error(res, 400, e.subject() == "body" ? "body" : "inputs[0].data", e.what());
  }
  if (m.sessions)
    metrics_.set_sessions(m.name, static_cast<std::int64_t>(m.sessions->live()),
                          m.sessions->expired());
}

void Server::routes() {
  const auto ok_json = [](httplib::Response& res, const json& j) {
    res.set_content(j.dump(), "application/json");
  };
  http_.Get("/v2/health/live", [=](const auto&, auto& res) { ok_json(res, {{"live", true}}); });
  http_.Get("/v2/health/ready", [=](const auto&, auto& res) { ok_json(res, {{"ready", true}}); });
  http_.Get("/v2", [=](const auto&, auto& res) {
    ok_json(res,
            {{"name", "recur"}, {"version", "0.1.0"}, {"extensions", json::array({"sequence"})}});
  });
  http_.Get("/v2/models", [=, this](const auto&, auto& res) {
    json list = json::array();
    for (const auto& m : models_) list.push_back(m->name);
    ok_json(res, {{"models", list}});
  });
  http_.Get(R"(/v2/models/([^/]+)(?:/versions/1)?)", [=, this](const auto& req, auto& res) {
    if (Model* m = model_or_404(req, res))
      ok_json(res, model_metadata(m->name, m->shape, m->predictor->view_name()));
  });
  http_.Get(R"(/v2/models/([^/]+)(?:/versions/1)?/ready)", [=, this](const auto& req, auto& res) {
    if (Model* m = model_or_404(req, res)) ok_json(res, {{"name", m->name}, {"ready", true}});
  });
  http_.Post(R"(/v2/models/([^/]+)(?:/versions/1)?/infer)", [this](const auto& req, auto& res) {
    if (Model* m = model_or_404(req, res)) infer(*m, req, res);
  });
  http_.Post(R"(/v2/models/([^/]+)/frame)", [=, this](const auto& req, auto& res) {
    Model* m = model_or_404(req, res);
    if (!m) return;
    try {
      ok_json(
          res,
          {{"rows", m->shape.rows}, {"cols", m->shape.cols}, {"pixels", framed_png(*m, req.body)}});
    } catch (const BadRequest& e) {
      send_error(res, e.status(), e.field(), e.reason());
    } catch (const Error& e) {
      send_error(res, 400, "body", e.reason());
    }
  });
  http_.Get("/metrics", [this](const auto&, auto& res) {
    res.set_content(metrics_.text(), "text/plain; version=0.0.4");
  });
  http_.Get(R"(/(|digits|text|static/[a-z.]+))", [this](const auto& req, auto& res) {
    std::vector<PageModel> list;
    for (const auto& m : models_)
      list.push_back(
          {m->name, to_string(m->shape.kind), m->shape.streamable, m->shape.not_streamable});
    const Page page = find_page(req.path, list);
    if (page.body.empty()) return send_error(res, 404, "path", "no page at " + req.path);
    res.set_content(page.body, page.content_type.c_str());
  });
}

// Authorization, security headers, the error and exception handlers, the logger.
void Server::guard() {
  http_.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    t_arrived = std::chrono::steady_clock::now();
    t_model.clear();
    res.set_header("Content-Security-Policy", kContentSecurityPolicy);
    res.set_header("X-Content-Type-Options", "nosniff");
    res.set_header("Referrer-Policy", "no-referrer");
    const bool open = req.path.rfind("/v2/health/", 0) == 0 || is_page_path(req.path);
    if (options_.token.empty() || open) return httplib::Server::HandlerResponse::Unhandled;
    const std::string want = "Bearer " + options_.token;
    const std::string got = req.get_header_value("Authorization");
    unsigned diff = got.size() != want.size();
    for (std::size_t i = 0; i < want.size() && i < got.size(); ++i) diff |= got[i] ^ want[i];
    if (diff == 0) return httplib::Server::HandlerResponse::Unhandled;
    res.set_header("WWW-Authenticate", "Bearer");
    send_error(res, 401, "Authorization", "a valid \"Bearer TOKEN\" header is required (--token)");
    return httplib::Server::HandlerResponse::Handled;
  });
  http_.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    if (res.status == 413)
      send_error(res, 413, "body", "is larger than the server's limit (--max-body-mb)");
    else if (res.status == 404)
      send_error(res, 404, "path", "no such endpoint: " + req.method + " " + req.path);
    else
      send_error(res, res.status, "request",
                 fmt::format("refused with HTTP status {}", res.status));
  });
  http_.set_exception_handler(
      [](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
        try {
          std::rethrow_exception(ep);
        } catch (const BadRequest& e) {
          send_error(res, e.status(), e.field(), e.reason());
        } catch (const Error& e) {
          send_error(res, 400, e.subject(), e.reason());
        } catch (const std::exception& e) {
          send_error(res, 500, "", std::string("internal error: ") + e.what());
        } catch (...) {
          send_error(res, 500, "", "internal error");
        }
      });
  http_.set_logger([this](const auto& req, const auto& res) { log(req, res); });
  http_.set_payload_max_length(options_.max_body_bytes);
  http_.set_read_timeout(options_.timeout_s, 0);
  http_.set_write_timeout(options_.timeout_s, 0);
  http_.set_keep_alive_max_count(100000);
  http_.set_keep_alive_timeout(5);
  // Headers and body leave in two writes: without TCP_NODELAY, Nagle holds the second until
  // the client's delayed ACK (40 ms a request).
  http_.set_tcp_nodelay(true);
  // The library listens with a backlog of 5: 64 clients connecting at once would overflow it
  // (dropped handshakes, resets). Keep the listening socket to widen its backlog after binding.
  http_.set_socket_options([this](int sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    listen_socket_ = sock;
  });
  const int threads = options_.http_threads;
  http_.new_task_queue = [threads] {
    return new httplib::ThreadPool(static_cast<size_t>(threads));
  };
}

void Server::log(const httplib::Request& req, const httplib::Response& res) {
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t_arrived).count();
  metrics_.request(t_model, res.status, seconds);
  if (!options_.log_requests) return;
  // The path arrives percent-decoded: a control character in it must not forge a log line.
  std::string path = req.path.substr(0, 256);
  for (char& c : path)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  std::lock_guard<std::mutex> lock(log_mutex_);
  fmt::print(out_, "{} {} {} {:.3f} ms {}B\n", req.method, path, res.status, seconds * 1e3,
             req.body.size());
  std::fflush(out_);
}

int Server::run() {
  int port = options_.port;
  if (port == 0) {
    port = http_.bind_to_any_port(options_.host);
    RECUR_CHECK(port > 0, "--host", "cannot listen on " + options_.host);
  } else {
    RECUR_CHECK(http_.bind_to_port(options_.host, port), "--port",
                fmt::format("cannot listen on {}:{} (in use, or not an address of this machine)",
                            options_.host, port));
  }
  if (listen_socket_ >= 0) ::listen(listen_socket_, 1024);
  fmt::print(out_, "recur serve: listening on http://{}:{}\n", options_.host, port);
  for (const auto& m : models_)
    fmt::print(out_, "  model {}: {} ({}, {} classes{}) POST /v2/models/{}/infer\n", m->name,
               m->predictor->path(), to_string(m->shape.kind), m->shape.classes,
               m->shape.streamable ? ", streams" : "", m->name);
  std::fflush(out_);
  // SIGINT and SIGTERM write to a pipe (any thread may take them, BLAS's included); this thread
  // reads it and stops the server: it stops accepting, answers what it has read, and returns.
  std::thread stopper([this] {
    char byte = 0;
    while (::read(g_stop_pipe[0], &byte, 1) < 0 && errno == EINTR) {
    }
    stopping_ = true;
    http_.stop();
  });
  const bool listened = http_.listen_after_bind();
  if (!stopping_) {  // the socket failed: end the stopper thread
    const char byte = 0;
    [[maybe_unused]] const auto n = ::write(g_stop_pipe[1], &byte, 1);
  }
  stopper.join();
  RECUR_CHECK(listened || stopping_, "--port", "the listening socket failed");
  fmt::print(out_, "recur serve: stopped\n");
  std::fflush(out_);
  return 0;
}

}  // namespace

int serve(const std::vector<NamedModel>& models, const ServeOptions& options, std::FILE* out) {
  RECUR_CHECK(::pipe(g_stop_pipe) == 0, "serve", "cannot make a pipe");
  // Every forward pass allocates its workspace (megabytes for a batch): served from the heap
  // and reused instead of fresh pages from mmap each time, whose page faults and zeroing took
  // a third of the server's time under load. The heap keeps its high-water mark (RSS is flat).
  mallopt(M_MMAP_THRESHOLD, 256 << 20);
  mallopt(M_TRIM_THRESHOLD, 512 << 20);
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
  Server server(models, options, out);
  return server.run();
}

}  // namespace recur::serve
