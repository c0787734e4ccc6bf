// `recur serve` (server.hpp) on the HTTP layer (http.hpp): routes, authorization, the infer
// requests' way to the batcher or the blocking pool, logging, and a clean stop on SIGINT /
// SIGTERM.
#include "serve/server.hpp"

#include <fmt/core.h>
#include <malloc.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include <atomic>
#include <chrono>
#include <csignal>
#include <functional>
#include <map>
#include <mutex>
#include <thread>

#include "recur/digit_frame.hpp"
#include "recur/error.hpp"
#include "recur/image.hpp"
#include "serve/http.hpp"
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

bool wants_png(const std::string& type) {
  return type.rfind("image/", 0) == 0 || type.rfind("application/octet-stream", 0) == 0;
}

int g_stop_pipe[2] = {-1, -1};

void on_stop_signal(int) {
  const char byte = 1;
  [[maybe_unused]] const auto n = ::write(g_stop_pipe[1], &byte, 1);
}

class Server {
 public:
  Server(const std::vector<NamedModel>& named, const ServeOptions& options, std::FILE* out);
  int run();

 private:
  void handle(HttpRequest&& req, Responder respond);
  bool authorized(const HttpRequest& req) const;
  void model_route(const std::string& rest, HttpRequest&& req, Responder& respond);
  void infer(Model& m, HttpRequest&& req, Responder respond);
  void answer_blocking(HttpRequest&& req, Responder respond,
                       std::function<HttpResponse(const HttpRequest&)> answer);
  void infer_blocking(Model& m, HttpRequest&& req, Responder respond);
  void infer_now(Model& m, const HttpRequest& req, HttpResponse& res);
  Predictions predict(Model& m, const InferRequest& r);
  std::vector<std::uint8_t> framed_png(const Model& m, const std::string& body);
  void log(const std::string& method, const std::string& path, const HttpResponse& res,
           double seconds, std::size_t bytes);

  ServeOptions options_;
  std::FILE* out_;
  Metrics metrics_;
  std::unique_ptr<HttpServer> http_;  // before the models: they are gone first at the end
  std::vector<std::unique_ptr<Model>> models_;
  std::map<std::string, Model*> by_name_;
  std::mutex log_mutex_;
};

HttpResponse json_response(const json& j, const std::string& label = "") {
  HttpResponse res;
  res.body = j.dump();
  res.label = label;
  return res;
}

HttpResponse error_response(int status, const std::string& field, const std::string& reason,
                            const std::string& label = "") {
  HttpResponse res;
  res.status = status;
  res.body = error_body(field, reason).dump();
  res.label = label;
  return res;
}

// The answer to a request that failed with the exception in flight.
HttpResponse refusal_of_current_exception(const std::string& label) {
  try {
    throw;
  } catch (const BadRequest& e) {
    return error_response(e.status(), e.field(), e.reason(), label);
  } catch (const Error& e) {
    // The Predictor's refusals (an empty text, an id out of range, a picture without ink).
    return error_response(400, e.subject() == "body" ? "body" : "inputs[0].data", e.what(), label);
  } catch (const std::exception& e) {
    return error_response(500, "", std::string("internal error: ") + e.what(), label);
  } catch (...) {
    return error_response(500, "", "internal error", label);
  }
}

Server::Server(const std::vector<NamedModel>& named, const ServeOptions& options, std::FILE* out)
    : options_(options), out_(out) {
  RECUR_CHECK(!named.empty(), "serve", "give at least one model: recur serve MODEL.safetensors");
  HttpOptions http;
  http.host = options_.host;
  http.port = options_.port;
  http.io_threads = options_.io_threads;
  http.blocking_threads = options_.http_threads;
  http.max_body_bytes = options_.max_body_bytes;
  http.timeout_s = options_.timeout_s;
  http.common_headers = {{"Content-Security-Policy", kContentSecurityPolicy},
                         {"X-Content-Type-Options", "nosniff"},
                         {"Referrer-Policy", "no-referrer"}};
  http.error_body = [](const std::string& field, const std::string& reason) {
    return error_body(field, reason).dump();
  };
  http_ = std::make_unique<HttpServer>(
      http,
      [this](HttpRequest&& req, Responder respond) { handle(std::move(req), std::move(respond)); },
      [this](const std::string& method, const std::string& path, const HttpResponse& res,
             double seconds, std::size_t bytes) { log(method, path, res, seconds, bytes); });
  for (const NamedModel& n : named) {
    RECUR_CHECK(valid_name(n.name), n.path,
                "the model name '" + n.name +
                    "' is not 1 to 64 letters, digits, '-', '_' or '.'; name it NAME=" + n.path);
    RECUR_CHECK(!by_name_.count(n.name), n.path,
                "the name '" + n.name + "' is given twice; name each model NAME=MODEL");
    auto m = std::make_unique<Model>();
    m->name = n.name;
    PredictorOptions predictor_options;
    predictor_options.precision = options_.precision;
    m->predictor = std::make_unique<Predictor>(n.path, predictor_options);
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

// An infer request answered on the calling thread, which may wait (a blocking-pool thread).
void Server::infer_now(Model& m, const HttpRequest& req, HttpResponse& res) {
  try {
    InferRequest r;
    if (wants_png(req.content_type) || is_png(req.body)) {
      r.payload = Payload::images;
      r.count = 1;
      r.u8 = framed_png(m, req.body);
    } else {
      r = parse_infer_request(req.body, m.shape);
    }
    std::int64_t steps = -1;
    const Predictions p = r.sequence.present ? m.sessions->feed(r, steps) : predict(m, r);
    res.body = infer_response_text(m.name, r, p, steps);
  } catch (...) {
    res = refusal_of_current_exception(m.name);
  }
  res.label = m.name;
  if (m.sessions)
    metrics_.set_sessions(m.name, static_cast<std::int64_t>(m.sessions->live()),
                          m.sessions->expired());
}

// Answers the request on the blocking pool with what `answer` makes of it.
void Server::answer_blocking(HttpRequest&& req, Responder respond,
                             std::function<HttpResponse(const HttpRequest&)> answer) {
  auto shared =
      std::make_shared<std::pair<HttpRequest, Responder>>(std::move(req), std::move(respond));
  http_->run_blocking(
      [shared, answer = std::move(answer)] { shared->second(answer(shared->first)); });
}

void Server::infer_blocking(Model& m, HttpRequest&& req, Responder respond) {
  answer_blocking(std::move(req), std::move(respond), [this, &m](const HttpRequest& r) {
    HttpResponse res;
    infer_now(m, r, res);
    return res;
  });
}

// Plain JSON requests of images (or of image rows) are parsed here, on the I/O thread, and
// joined into a batch whose worker writes the answer: no thread waits for them. What may wait
// (streaming steps, texts, PNG pictures) or parse long (a large body) runs on the blocking pool.
void Server::infer(Model& m, HttpRequest&& req, Responder respond) {
  constexpr std::size_t kParseHere = 64 * 1024;
  const bool png = wants_png(req.content_type) || is_png(req.body);
  const bool image_model =
      m.shape.kind == InputKind::image_sequence || m.shape.kind == InputKind::whole_image;
  if (png || !image_model || req.body.size() > kParseHere)
    return infer_blocking(m, std::move(req), std::move(respond));
  InferRequest r;
  try {
    r = parse_infer_request(req.body, m.shape);
  } catch (...) {
    return respond(refusal_of_current_exception(m.name));
  }
  const bool images = r.payload == Payload::images;
  const bool rows = r.payload == Payload::steps_f32 && m.shape.kind == InputKind::image_sequence;
  if (r.sequence.present || !(images || rows))
    return infer_blocking(m, std::move(req), std::move(respond));
  auto answer = std::make_shared<Responder>(std::move(respond));
  std::vector<std::uint8_t> u8 = std::move(r.u8);
  std::vector<float> f32 = std::move(r.f32);
  const std::int64_t n = r.count;
  const int steps = r.steps;
  Batcher::Completion done = [&m, answer, r = std::move(r)](Predictions&& p,
                                                            std::exception_ptr error) {
    HttpResponse res;
    try {
      if (error) std::rethrow_exception(error);
      res.body = infer_response_text(m.name, r, p, -1);
    } catch (...) {
      res = refusal_of_current_exception(m.name);
    }
    res.label = m.name;
    (*answer)(std::move(res));
  };
  if (images)
    m.batcher->submit_images(std::move(u8), n, std::move(done));
  else
    m.batcher->submit_sequences(std::move(f32), n, steps, std::move(done));
}

bool Server::authorized(const HttpRequest& req) const {
  const bool open = req.path.rfind("/v2/health/", 0) == 0 || is_page_path(req.path);
  if (options_.token.empty() || open) return true;
  const std::string want = "Bearer " + options_.token;
  const std::string& got = req.authorization;
  unsigned diff = got.size() != want.size();
  for (std::size_t i = 0; i < want.size() && i < got.size(); ++i) diff |= got[i] ^ want[i];
  return diff == 0;
}

// /v2/models/NAME[/versions/1][/ready | /infer] and /v2/models/NAME/frame; `rest` follows
// "/v2/models/".
void Server::model_route(const std::string& rest, HttpRequest&& req, Responder& respond) {
  const std::size_t slash = rest.find('/');
  const std::string name = rest.substr(0, slash);
  std::string tail = slash == std::string::npos ? "" : rest.substr(slash);
  const bool versioned = tail.rfind("/versions/1", 0) == 0;
  if (versioned) tail = tail.substr(11);
  const bool get = req.method == "GET";
  const bool post = req.method == "POST";
  const bool known = (get && (tail.empty() || tail == "/ready")) ||
                     (post && (tail == "/infer" || (tail == "/frame" && !versioned)));
  if (name.empty() || !known)
    return respond(error_response(404, "path", "no such endpoint: " + req.method + " " + req.path));
  const auto it = by_name_.find(name);
  if (it == by_name_.end()) {
    std::string served;
    for (const auto& m : models_) served += (served.empty() ? "" : ", ") + m->name;
    return respond(
        error_response(404, "model", "no model is named '" + name + "' (served: " + served + ")"));
  }
  Model& m = *it->second;
  if (tail.empty())
    return respond(
        json_response(model_metadata(m.name, m.shape, m.predictor->view_name()), m.name));
  if (tail == "/ready") return respond(json_response({{"name", m.name}, {"ready", true}}, m.name));
  if (tail == "/infer") return infer(m, std::move(req), std::move(respond));
  answer_blocking(std::move(req), std::move(respond), [this, &m](const HttpRequest& r) {
    HttpResponse res;
    try {
      res = json_response(
          {{"rows", m.shape.rows}, {"cols", m.shape.cols}, {"pixels", framed_png(m, r.body)}});
    } catch (const BadRequest& e) {
      res = error_response(e.status(), e.field(), e.reason());
    } catch (const Error& e) {
      res = error_response(400, "body", e.reason());
    }
    res.label = m.name;
    return res;
  });
}

void Server::handle(HttpRequest&& req, Responder respond) {
  if (!authorized(req)) {
    HttpResponse res = error_response(401, "Authorization",
                                      "a valid \"Bearer TOKEN\" header is required (--token)");
    res.headers.emplace_back("WWW-Authenticate", "Bearer");
    return respond(std::move(res));
  }
  const std::string& path = req.path;
  const bool get = req.method == "GET";
  if (path.rfind("/v2/models/", 0) == 0)
    return model_route(path.substr(11), std::move(req), respond);
  if (get && path == "/v2/health/live") return respond(json_response({{"live", true}}));
  if (get && path == "/v2/health/ready") return respond(json_response({{"ready", true}}));
  if (get && path == "/v2")
    return respond(json_response(
        {{"name", "recur"}, {"version", "0.1.0"}, {"extensions", json::array({"sequence"})}}));
  if (get && path == "/v2/models") {
    json list = json::array();
    for (const auto& m : models_) list.push_back(m->name);
    return respond(json_response({{"models", list}}));
  }
  if (get && path == "/metrics") {
    for (const auto& m : models_)
      if (m->sessions)
        metrics_.set_sessions(m->name, static_cast<std::int64_t>(m->sessions->live()),
                              m->sessions->expired());
    HttpResponse res;
    res.body = metrics_.text();
    res.content_type = "text/plain; version=0.0.4";
    return respond(std::move(res));
  }
  if (get && is_page_path(path)) {
    std::vector<PageModel> list;
    for (const auto& m : models_)
      list.push_back(
          {m->name, to_string(m->shape.kind), m->shape.streamable, m->shape.not_streamable});
    const Page page = find_page(path, list);
    if (page.body.empty()) return respond(error_response(404, "path", "no page at " + path));
    HttpResponse res;
    res.body = page.body;
    res.content_type = page.content_type;
    return respond(std::move(res));
  }
  respond(error_response(404, "path", "no such endpoint: " + req.method + " " + path));
}

void Server::log(const std::string& method, const std::string& path, const HttpResponse& res,
                 double seconds, std::size_t bytes) {
  metrics_.request(res.label, res.status, seconds);
  if (!options_.log_requests) return;
  // The path arrives percent-decoded: a control character in it must not forge a log line.
  std::string shown = path.substr(0, 256);
  for (char& c : shown)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  std::lock_guard<std::mutex> lock(log_mutex_);
  fmt::print(out_, "{} {} {} {:.3f} ms {}B\n", method, shown, res.status, seconds * 1e3, bytes);
  std::fflush(out_);
}

int Server::run() {
  const int port = http_->bind();
  fmt::print(out_, "recur serve: listening on http://{}:{}\n", options_.host, port);
  for (const auto& m : models_)
    fmt::print(out_, "  model {}: {} ({}, {} classes{}{}) POST /v2/models/{}/infer\n", m->name,
               m->predictor->path(), to_string(m->shape.kind), m->shape.classes,
               m->shape.streamable ? ", streams" : "",
               options_.precision == InferPrecision::int8 ? ", int8" : "", m->name);
  std::fflush(out_);
  // SIGINT and SIGTERM write to a pipe (any thread may take them, BLAS's included); this thread
  // reads it and stops the server: it stops accepting, answers what it has read, and returns.
  std::thread stopper([this] {
    char byte = 0;
    while (::read(g_stop_pipe[0], &byte, 1) < 0 && errno == EINTR) {
    }
    http_->stop();
  });
  http_->run();
  stopper.join();
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
