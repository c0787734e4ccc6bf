// The event-driven HTTP/1.1 layer (http.hpp) on Boost.Asio and Boost.Beast: Beast parses each
// request (head first, so that a body over the limit is refused from its Content-Length), the
// answer is written here in one gather write of head and body.
#include "serve/http.hpp"

#include <fmt/core.h>

#include <array>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <charconv>
#include <chrono>
#include <list>
#include <optional>
#include <thread>

#include "recur/error.hpp"

namespace recur::serve {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;
using Executor = net::io_context::executor_type;
using Socket = tcp::socket::rebind_executor<Executor>::other;

namespace {

const char* reason_phrase(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 413:
      return "Payload Too Large";
    case 415:
      return "Unsupported Media Type";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 503:
      return "Service Unavailable";
    default:
      return "Status";
  }
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The target's path, percent-decoded (a bad escape stays as it is), without the query.
std::string decoded_path(std::string_view target) {
  target = target.substr(0, target.find('?'));
  std::string path;
  path.reserve(target.size());
  for (std::size_t i = 0; i < target.size(); ++i) {
    const int hi = target[i] == '%' && i + 2 < target.size() ? hex_value(target[i + 1]) : -1;
    const int lo = hi >= 0 ? hex_value(target[i + 2]) : -1;
    if (lo >= 0) {
      path += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else {
      path += target[i];
    }
  }
  return path;
}

const beast::error_category& parse_errors() {
  return bhttp::make_error_code(bhttp::error::bad_method).category();
}

}  // namespace

class HttpSession : public std::enable_shared_from_this<HttpSession> {
 public:
  HttpSession(HttpServer::Impl& server, std::size_t context, Socket socket)
      : server_(server), context_(context), stream_(std::move(socket)) {}
  void start();
  void answer(HttpResponse response);  // any thread
  void close_if_idle();                // on its I/O thread: closes it if between requests

 private:
  void read();
  void read_head();
  void on_head(beast::error_code ec);
  void read_body();
  void on_body(beast::error_code ec);
  bool refuse_on_error(beast::error_code ec);
  void refuse(int status, const std::string& field, const std::string& reason);
  void write(HttpResponse response);
  void on_written(beast::error_code ec);
  void linger();
  void drain(std::size_t budget);
  void finish();

  HttpServer::Impl& server_;
  std::size_t context_;
  // The stream knows its executor's type: no type-erased executor copied per operation.
  beast::basic_stream<tcp, Executor> stream_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  std::list<std::weak_ptr<HttpSession>>::iterator live_;
  bool idle_ = false;  // waiting for a request's first bytes
  bool keep_alive_ = true;
  bool finished_ = false;
  bool head_only_ = false;  // a HEAD request: the answer's head only
  std::string method_ = "-";
  std::string path_ = "-";
  std::size_t request_bytes_ = 0;
  std::chrono::steady_clock::time_point arrived_;
  std::string head_;
  HttpResponse response_;
};

struct HttpServer::Impl {
  HttpOptions options;
  Handler handler;
  Logger logger;
  std::vector<std::unique_ptr<net::io_context>> contexts;
  using Guard = net::executor_work_guard<net::io_context::executor_type>;
  std::vector<Guard> guards;
  // The sessions of each context, touched only on its thread (to close the idle ones at stop).
  std::vector<std::list<std::weak_ptr<HttpSession>>> live;
  std::optional<tcp::acceptor> acceptor;
  std::size_t next_context = 0;
  std::atomic<bool> stopping{false};
  std::atomic<std::int64_t> in_flight{0};  // requests read and not yet answered
  net::thread_pool blocking;               // last: its tasks may still answer at destruction

  Impl(HttpOptions o, Handler h, Logger l)
      : options(std::move(o)),
        handler(std::move(h)),
        logger(std::move(l)),
        blocking(static_cast<std::size_t>(std::max(1, options.blocking_threads))) {
    const int n = std::max(1, options.io_threads);
    for (int i = 0; i < n; ++i) {
      contexts.push_back(std::make_unique<net::io_context>(1));
      guards.push_back(net::make_work_guard(*contexts.back()));
    }
    live.resize(contexts.size());
  }

  void accept() {
    const std::size_t k = next_context++ % contexts.size();
    acceptor->async_accept(
        contexts[k]->get_executor(), [this, k](beast::error_code ec, Socket socket) {
          if (ec == net::error::operation_aborted || !acceptor->is_open()) return;
          if (!ec) {
            beast::error_code ignored;
            socket.set_option(tcp::no_delay(true), ignored);
            // The socket belongs to context k: start it on that thread.
            net::post(*contexts[k], [this, k, s = std::move(socket)]() mutable {
              std::make_shared<HttpSession>(*this, k, std::move(s))->start();
            });
          }
          accept();  // a failed accept (too many open files) is retried with the next connection
        });
  }
};

// ---- session ----

void HttpSession::start() {
  auto& list = server_.live[context_];
  live_ = list.insert(list.end(), weak_from_this());
  // Beast reads into what the buffer has room for, growing it from 512 bytes: a digit's
  // request (3.4 kB) would take several reads.
  buffer_.reserve(16 * 1024);
  read();
}

// Waits for a request's first bytes (a keep-alive connection may idle for max(5, timeout_s)
// seconds), then reads its head within timeout_s.
void HttpSession::read() {
  if (server_.stopping) return finish();
  if (buffer_.size() > 0) return read_head();  // the next request came with the last one
  idle_ = true;
  const int idle_s = std::max(5, server_.options.timeout_s);
  stream_.expires_after(std::chrono::seconds(idle_s));
  stream_.async_read_some(buffer_.prepare(16 * 1024),
                          [self = shared_from_this()](beast::error_code ec, std::size_t n) {
                            self->idle_ = false;
                            if (ec)
                              return self->finish();  // the client left, or idled past its time
                            self->buffer_.commit(n);
                            self->read_head();
                          });
}

void HttpSession::read_head() {
  if (server_.stopping) return finish();
  parser_.emplace();
  parser_->header_limit(64 * 1024);
  parser_->body_limit(server_.options.max_body_bytes);
  stream_.expires_after(std::chrono::seconds(server_.options.timeout_s));
  bhttp::async_read_header(
      stream_, buffer_, *parser_,
      [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_head(ec); });
}

// A parse error or a limit is answered (and the connection closed); the client leaving, a
// timeout or a socket error closes the connection without a word. Returns true when handled.
bool HttpSession::refuse_on_error(beast::error_code ec) {
  if (!ec) return false;
  if (ec == bhttp::error::header_limit) {
    refuse(431, "headers", "are larger than the server's limit (64 KiB)");
  } else if (ec == bhttp::error::body_limit) {
    refuse(413, "body", "is larger than the server's limit (--max-body-mb)");
  } else if (&ec.category() == &parse_errors() && ec != bhttp::error::end_of_stream &&
             ec != bhttp::error::partial_message) {
    refuse(400, "request", "is not a valid HTTP/1.1 request (" + ec.message() + ")");
  } else {
    finish();
  }
  return true;
}

void HttpSession::on_head(beast::error_code ec) {
  if (refuse_on_error(ec)) return;
  arrived_ = std::chrono::steady_clock::now();
  const auto& head = parser_->get();
  method_ = std::string(head.method_string());
  const auto target = head.target();
  path_ = decoded_path(std::string_view(target.data(), target.size()));
  const auto length = parser_->content_length();
  if (length && *length > server_.options.max_body_bytes) {
    return refuse(413, "body", "is larger than the server's limit (--max-body-mb)");
  }
  if (beast::iequals(head[bhttp::field::expect], "100-continue")) {
    static const std::string kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
    net::async_write(stream_, net::buffer(kContinue),
                     [self = shared_from_this()](beast::error_code e, std::size_t) {
                       if (e) return self->finish();
                       self->read_body();
                     });
    return;
  }
  read_body();
}

void HttpSession::read_body() {
  stream_.expires_after(std::chrono::seconds(server_.options.timeout_s));
  bhttp::async_read(
      stream_, buffer_, *parser_,
      [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_body(ec); });
}

void HttpSession::on_body(beast::error_code ec) {
  if (refuse_on_error(ec)) return;
  stream_.expires_never();  // the answer may take a batch's time; the write sets its own
  auto message = parser_->release();
  keep_alive_ = message.keep_alive();
  HttpRequest request;
  // HEAD is answered as GET is, without the body.
  head_only_ = method_ == "HEAD";
  request.method = head_only_ ? "GET" : method_;
  request.path = path_;
  request.content_type = std::string(message[bhttp::field::content_type]);
  request.authorization = std::string(message[bhttp::field::authorization]);
  request.body = std::move(message.body());
  request_bytes_ = request.body.size();
  ++server_.in_flight;
  try {
    server_.handler(std::move(request), Responder(shared_from_this()));
  } catch (...) {
    // The handler answers its own refusals; anything that escapes it was answered with a 500
    // by the Responder it dropped.
  }
}

void HttpSession::refuse(int status, const std::string& field, const std::string& reason) {
  keep_alive_ = false;
  ++server_.in_flight;
  if (arrived_ == std::chrono::steady_clock::time_point{})
    arrived_ = std::chrono::steady_clock::now();
  HttpResponse response;
  response.status = status;
  response.body = server_.options.error_body(field, reason);
  write(std::move(response));
}

void HttpSession::answer(HttpResponse response) {
  net::dispatch(stream_.get_executor(),
                [self = shared_from_this(), r = std::move(response)]() mutable {
                  self->write(std::move(r));
                });
}

void HttpSession::write(HttpResponse response) {
  if (server_.stopping) keep_alive_ = false;
  response_ = std::move(response);
  // Written into the connection's previous head: no allocation once its capacity is reached.
  // (Plain appends, not fmt::format_to into the string: clang and Debian's libfmt, built by GCC,
  // name that function's library half differently, and the sanitizer build would not link.)
  auto number = [this](std::size_t n) {
    char digits[24];
    head_.append(digits, std::to_chars(digits, digits + sizeof digits, n).ptr);
  };
  head_.assign("HTTP/1.1 ");
  number(static_cast<std::size_t>(response_.status));
  head_.append(" ").append(reason_phrase(response_.status)).append("\r\nContent-Type: ");
  head_.append(response_.content_type).append("\r\nContent-Length: ");
  number(response_.body.size());
  head_.append("\r\n");
  auto header = [this](const std::string& name, const std::string& value) {
    head_.append(name).append(": ").append(value).append("\r\n");
  };
  for (const auto& [name, value] : server_.options.common_headers) header(name, value);
  for (const auto& [name, value] : response_.headers) header(name, value);
  if (!keep_alive_) head_ += "Connection: close\r\n";
  head_ += "\r\n";
  const std::array<net::const_buffer, 2> buffers = {
      net::buffer(head_),
      net::buffer(response_.body.data(), head_only_ ? 0 : response_.body.size())};
  stream_.expires_after(std::chrono::seconds(server_.options.timeout_s));
  net::async_write(
      stream_, buffers,
      [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_written(ec); });
}

void HttpSession::on_written(beast::error_code ec) {
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - arrived_).count();
  if (server_.logger) server_.logger(method_, path_, response_, seconds, request_bytes_);
  --server_.in_flight;
  arrived_ = {};
  head_only_ = false;
  method_ = path_ = "-";
  request_bytes_ = 0;
  if (ec) return finish();
  if (!keep_alive_) return linger();
  read();
}

// A refused request's body may still be on its way (a client sends all of it before reading
// the answer): closing now would reset the connection and lose the answer. Stop sending and
// read what comes, bounded in time and bytes, until the client closes.
void HttpSession::linger() {
  beast::error_code ignored;
  stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
  stream_.expires_after(std::chrono::seconds(server_.options.timeout_s));
  drain(4 * server_.options.max_body_bytes + (1u << 20));
}

void HttpSession::drain(std::size_t budget) {
  buffer_.consume(buffer_.size());
  if (budget == 0) return finish();
  stream_.async_read_some(buffer_.prepare(64 * 1024),
                          [self = shared_from_this(), budget](beast::error_code ec, std::size_t n) {
                            if (ec) return self->finish();
                            self->drain(budget - std::min(budget, n));
                          });
}

void HttpSession::close_if_idle() {
  if (idle_) finish();
}

void HttpSession::finish() {
  if (finished_) return;
  finished_ = true;
  beast::error_code ignored;
  stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
  stream_.socket().close(ignored);
  server_.live[context_].erase(live_);
}

// ---- responder ----

Responder::Responder(std::shared_ptr<HttpSession> session) : session_(std::move(session)) {}
Responder::Responder(Responder&&) noexcept = default;
namespace {

// What a dropped Responder answers.
HttpResponse unanswered() {
  HttpResponse r;
  r.status = 500;
  r.body = R"({"error":"internal error: the request was not answered","field":""})";
  return r;
}

}  // namespace

Responder& Responder::operator=(Responder&& other) noexcept {
  if (this != &other) {
    if (session_) (*this)(unanswered());
    session_ = std::move(other.session_);
  }
  return *this;
}

Responder::~Responder() {
  if (session_) (*this)(unanswered());
}

void Responder::operator()(HttpResponse response) {
  const std::shared_ptr<HttpSession> session = std::move(session_);
  if (session) session->answer(std::move(response));
}

// ---- server ----

HttpServer::HttpServer(HttpOptions options, Handler handler, Logger logger)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(handler), std::move(logger))) {}

HttpServer::~HttpServer() {
  impl_->blocking.join();
  for (auto& c : impl_->contexts) c->stop();
}

int HttpServer::bind() {
  Impl& s = *impl_;
  beast::error_code ec;
  const auto address = net::ip::make_address(s.options.host, ec);
  tcp::endpoint endpoint;
  if (ec) {
    tcp::resolver resolver(*s.contexts[0]);
    const auto found = resolver.resolve(s.options.host, std::to_string(s.options.port), ec);
    RECUR_CHECK(!ec && !found.empty(), "--host",
                "cannot listen on '" + s.options.host + "': not an address (" + ec.message() + ")");
    endpoint = *found.begin();
  } else {
    endpoint = tcp::endpoint(address, static_cast<unsigned short>(s.options.port));
  }
  s.acceptor.emplace(*s.contexts[0]);
  s.acceptor->open(endpoint.protocol(), ec);
  if (!ec) s.acceptor->set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) s.acceptor->bind(endpoint, ec);
  if (!ec) s.acceptor->listen(1024, ec);
  RECUR_CHECK(!ec, "--port",
              fmt::format("cannot listen on {}:{} ({}: in use, or not an address of this machine)",
                          s.options.host, s.options.port, ec.message()));
  return s.acceptor->local_endpoint().port();
}

void HttpServer::run() {
  Impl& s = *impl_;
  s.accept();
  std::vector<std::thread> threads;
  for (std::size_t i = 1; i < s.contexts.size(); ++i)
    threads.emplace_back([&s, i] { s.contexts[i]->run(); });
  s.contexts[0]->run();
  for (std::thread& t : threads) t.join();
  // The blocking tasks still queued run and answer into the stopped loops (dropped there).
  s.blocking.join();
}

void HttpServer::stop() {
  Impl& s = *impl_;
  if (s.stopping.exchange(true)) return;
  net::post(*s.contexts[0], [&s] {
    beast::error_code ignored;
    s.acceptor->close(ignored);
  });
  for (std::size_t i = 0; i < s.contexts.size(); ++i)
    net::post(*s.contexts[i], [&s, i] {
      // finish() erases from the list: walk a copy.
      const auto sessions = s.live[i];
      for (const auto& weak : sessions)
        if (const auto session = weak.lock()) session->close_if_idle();
    });
  // Answer what was read (bounded by the write timeout), then end the loops.
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(s.options.timeout_s + 5);
  while (s.in_flight > 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  for (auto& guard : s.guards) guard.reset();
  for (auto& c : s.contexts) c->stop();
}

void HttpServer::run_blocking(std::function<void()> work) {
  net::post(impl_->blocking, std::move(work));
}

}  // namespace recur::serve
