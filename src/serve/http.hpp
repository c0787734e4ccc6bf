// The HTTP/1.1 layer of `recur serve`: an event-driven server on Boost.Asio and Boost.Beast
// (Debian's libboost-dev; docs/SERVE.md says why). It knows nothing of models: it reads
// requests, hands each to one handler, and writes the answer the handler gives back, which may
// come later and from any thread (a batch worker's), so that no thread waits per request.
//
// Each I/O thread runs its own event loop over the connections it was given (no lock between
// them); keep-alive connections cost no thread. Limits answered here, before any handler runs:
// a request head over 64 KiB (431), a body over max_body_bytes (413, refused from its
// Content-Length before the body is read), a request that is not HTTP/1.x (400), and a client
// that sends nothing for timeout_s seconds (dropped). "Expect: 100-continue" is answered.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace recur::serve {

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string path;    // percent-decoded, without the query
  std::string content_type;
  std::string authorization;
  std::string body;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // besides the common ones
  std::string label;  // passed to the logger (the model's name), not sent
};

class HttpSession;

// Completes one request, exactly once, from any thread. Dropping it unanswered answers 500 (a
// handler bug must not hang its client).
class Responder {
 public:
  explicit Responder(std::shared_ptr<HttpSession> session);
  Responder(Responder&&) noexcept;
  Responder& operator=(Responder&&) noexcept;
  Responder(const Responder&) = delete;
  Responder& operator=(const Responder&) = delete;
  ~Responder();
  void operator()(HttpResponse response);

 private:
  std::shared_ptr<HttpSession> session_;
};

struct HttpOptions {
  std::string host = "127.0.0.1";
  int port = 8080;  // 0: any free port
  int io_threads = 2;
  int blocking_threads = 64;  // run_blocking's pool
  std::size_t max_body_bytes = 16u << 20;
  int timeout_s = 30;  // reading one request (head and body), writing one answer
  // Added to every answer, the layer's own refusals included.
  std::vector<std::pair<std::string, std::string>> common_headers;
  // The JSON body of a refusal the layer makes itself (field, reason).
  std::function<std::string(const std::string& field, const std::string& reason)> error_body;
};

class HttpServer {
 public:
  using Handler = std::function<void(HttpRequest&& request, Responder respond)>;
  // After an answer is written (or its client left): the request's method and path, the
  // answer, the seconds since the request was read, and the body's size.
  using Logger =
      std::function<void(const std::string& method, const std::string& path,
                         const HttpResponse& response, double seconds, std::size_t request_bytes)>;

  HttpServer(HttpOptions options, Handler handler, Logger logger);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and listens; returns the port (the one chosen when options.port is 0). Throws Error
  // naming --host or --port.
  int bind();
  // Serves until stop(): then stops accepting, closes idle connections, answers the requests
  // in flight and returns.
  void run();
  void stop();  // from any thread, once
  // Runs work on a pool of blocking_threads threads (handlers that wait, such as a streaming
  // step joining other sessions, must not hold an I/O thread).
  void run_blocking(std::function<void()> work);

 private:
  friend class HttpSession;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace recur::serve
