// The infer request's fast path (protocol.hpp): a plain, valid request (one input tensor with a
// flat `data` array of numbers, strings without escapes, no unknown keys) is read in one pass
// straight into the request's buffers, without building a JSON document of its hundreds of
// numbers. Whatever it does not recognise, or any check that fails, sends the body to the
// general parser, which alone words the refusals: the fast path only ever accepts, and only
// what the general parser accepts with the same result (the fuzz harness compares the two).
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <optional>

#include "recur/text.hpp"
#include "serve/protocol.hpp"

namespace recur::serve {

namespace {

constexpr int kMaxRank = 4;
constexpr std::int64_t kMaxElements = std::int64_t{1} << 26;

class Scanner {
 public:
  explicit Scanner(std::string_view text) : p_(text.data()), end_(text.data() + text.size()) {}

  void skip_ws() {
    while (p_ < end_ && (*p_ == ' ' || *p_ == '\t' || *p_ == '\n' || *p_ == '\r')) ++p_;
  }
  bool eat(char c) {
    skip_ws();
    if (p_ < end_ && *p_ == c) {
      ++p_;
      return true;
    }
    return false;
  }
  bool at_end() {
    skip_ws();
    return p_ == end_;
  }
  // A string without escapes or control characters (others go to the general parser).
  bool string(std::string_view& out) {
    skip_ws();
    if (p_ == end_ || *p_ != '"') return false;
    const char* start = ++p_;
    while (p_ < end_ && *p_ != '"') {
      const auto c = static_cast<unsigned char>(*p_);
      if (c == '\\' || c < 0x20) return false;
      ++p_;
    }
    if (p_ == end_) return false;
    out = std::string_view(start, static_cast<std::size_t>(p_ - start));
    ++p_;
    return true;
  }
  // JSON's unsigned integer: "0" or [1-9][0-9]*, not followed by a fraction or exponent.
  bool unsigned_integer(std::uint64_t& v) {
    skip_ws();
    const char* s = p_;
    while (p_ < end_ && *p_ >= '0' && *p_ <= '9') ++p_;
    if (p_ == s || (*s == '0' && p_ - s > 1) || followed_by_number_part()) return false;
    return std::from_chars(s, p_, v).ec == std::errc();
  }
  // A byte (0 to 255) as unsigned_integer reads it, in one pass without from_chars: an image's
  // hundreds of pixels are most of a request. Four digits or more go to the general parser.
  bool byte(std::uint8_t& out) {
    skip_ws();
    const char* s = p_;
    unsigned v = 0;
    while (p_ < end_ && p_ - s < 4 && static_cast<unsigned>(*p_ - '0') < 10u)
      v = v * 10 + static_cast<unsigned>(*p_++ - '0');
    const auto digits = p_ - s;
    if (digits == 0 || digits > 3 || (digits > 1 && *s == '0') || v > 255 ||
        followed_by_number_part())
      return false;
    out = static_cast<std::uint8_t>(v);
    return true;
  }
  // A whole array of exactly n bytes, "[" already read, up to and including its "]": the loop
  // of byte() and array() fused for an image's hundreds of pixels (no per-element call, bound
  // check or vector growth). Whatever byte() would refuse is refused here too; anything unusual
  // (a sign, a fraction, more or fewer than n values) returns false for the general parser.
  bool byte_array(std::uint8_t* out, std::size_t n) {
    skip_ws();
    if (n == 0) return p_ < end_ && *p_++ == ']';
    const char* p = p_;
    for (std::size_t k = 0; k < n; ++k) {
      // The longest element with its separator ("255," or "255]") reads without a bound check.
      if (end_ - p < 4) {
        p_ = p;
        return slow_bytes(out + k, n - k);
      }
      unsigned v = static_cast<unsigned>(*p - '0');
      if (v > 9) {
        p_ = p;
        return slow_bytes(out + k, n - k);
      }
      ++p;
      if (v != 0) {  // JSON allows no leading zero: "0" stands alone
        unsigned d = static_cast<unsigned>(*p - '0');
        if (d <= 9) {
          v = v * 10 + d;
          ++p;
          d = static_cast<unsigned>(*p - '0');
          if (d <= 9) {
            v = v * 10 + d;
            ++p;
          }
        }
      }
      const char c = *p;
      if (v > 255 || (c >= '0' && c <= '9') || c == '.' || c == 'e' || c == 'E') return false;
      out[k] = static_cast<std::uint8_t>(v);
      if (c == ',' && k + 1 < n) {
        ++p;
        while (p < end_ && (*p == ' ' || *p == '\n')) ++p;
      } else if (c == ']' && k + 1 == n) {
        p_ = p + 1;
        return true;
      } else {
        p_ = p;
        return slow_bytes(out + k + 1, n - k - 1, true);
      }
    }
    return false;
  }
  // Any JSON number, as the general parser reads it: an integer token as a 64-bit integer
  // (then converted), any other (or one too large) as the nearest double.
  bool number(double& v) {
    skip_ws();
    const char* s = p_;
    if (p_ < end_ && *p_ == '-') ++p_;
    const char* digits = p_;
    while (p_ < end_ && *p_ >= '0' && *p_ <= '9') ++p_;
    if (p_ == digits || (*digits == '0' && p_ - digits > 1)) return false;
    bool integer = true;
    if (p_ < end_ && *p_ == '.') {
      integer = false;
      const char* f = ++p_;
      while (p_ < end_ && *p_ >= '0' && *p_ <= '9') ++p_;
      if (p_ == f) return false;
    }
    if (p_ < end_ && (*p_ == 'e' || *p_ == 'E')) {
      integer = false;
      ++p_;
      if (p_ < end_ && (*p_ == '+' || *p_ == '-')) ++p_;
      const char* e = p_;
      while (p_ < end_ && *p_ >= '0' && *p_ <= '9') ++p_;
      if (p_ == e) return false;
    }
    if (integer) {
      if (*s == '-') {
        std::int64_t i = 0;
        if (std::from_chars(s, p_, i).ec == std::errc()) {
          v = static_cast<double>(i);
          return true;
        }
      } else {
        std::uint64_t u = 0;
        if (std::from_chars(s, p_, u).ec == std::errc()) {
          v = static_cast<double>(u);
          return true;
        }
      }
    }
    const auto r = std::from_chars(s, p_, v);
    return r.ec == std::errc() && r.ptr == p_;
  }
  bool boolean(bool& v) {
    skip_ws();
    if (end_ - p_ >= 4 && std::memcmp(p_, "true", 4) == 0) {
      p_ += 4;
      v = true;
      return true;
    }
    if (end_ - p_ >= 5 && std::memcmp(p_, "false", 5) == 0) {
      p_ += 5;
      v = false;
      return true;
    }
    return false;
  }
  std::size_t left() const { return static_cast<std::size_t>(end_ - p_); }
  char peek() {
    skip_ws();
    return p_ < end_ ? *p_ : '\0';
  }

 private:
  // byte_array's remaining n values through byte() and eat(), as array() reads them; `after`:
  // a value was just read and a separator or "]" comes next.
  bool slow_bytes(std::uint8_t* out, std::size_t n, bool after = false) {
    for (std::size_t k = 0; k < n; ++k) {
      if (after && !eat(',')) return false;
      if (!byte(out[k])) return false;
      after = true;
    }
    return eat(']');
  }
  bool followed_by_number_part() const {
    return p_ < end_ && (*p_ == '.' || *p_ == 'e' || *p_ == 'E');
  }
  const char* p_;
  const char* end_;
};

// The keys of an object, each once: calls key(name) for each, which reads its value.
template <typename Key>
bool object(Scanner& s, Key&& key) {
  if (!s.eat('{')) return false;
  if (s.eat('}')) return true;
  do {
    std::string_view name;
    if (!s.string(name) || !s.eat(':') || !key(name)) return false;
  } while (s.eat(','));
  return s.eat('}');
}

// A flat array of values, each read by item().
template <typename Item>
bool array(Scanner& s, Item&& item) {
  if (!s.eat('[')) return false;
  if (s.eat(']')) return true;
  do {
    if (!item()) return false;
  } while (s.eat(','));
  return s.eat(']');
}

struct Input {
  std::string_view datatype;
  std::vector<std::int64_t> shape;
  bool has_name = false, has_datatype = false, has_shape = false, has_data = false;
  std::int64_t elements = 0;
};

bool read_shape(Scanner& s, Input& in) {
  std::int64_t total = 1;
  const bool ok = array(s, [&] {
    std::uint64_t d = 0;
    if (!s.unsigned_integer(d) || in.shape.size() >= kMaxRank ||
        d > static_cast<std::uint64_t>(kMaxElements))
      return false;
    const auto v = static_cast<std::int64_t>(d);
    if (v > 0 && total > kMaxElements / v) return false;
    total *= v;
    in.shape.push_back(v);
    return true;
  });
  in.elements = total;
  return ok && !in.shape.empty();
}

// The data array, typed by the datatype and sized by the shape read before it.
bool read_data(Scanner& s, const ModelShape& m, Input& in, InferRequest& r) {
  if (!in.has_datatype || !in.has_shape || s.peek() != '[') return false;
  const auto n = static_cast<std::size_t>(in.elements);
  // Every element takes at least two bytes ("0,"): a shape cannot reserve more than the body.
  const std::size_t room = std::min(n, s.left() / 2 + 1);
  if (in.datatype == "UINT8") {
    // n values take at least 2n bytes ("0," ... "0]"): a shape larger than that cannot be read.
    if (n > s.left() / 2 || !s.eat('[')) return false;
    r.u8.resize(n);
    return s.byte_array(r.u8.data(), n);
  }
  if (in.datatype == "FP32") {
    r.f32.reserve(room);
    return array(s,
                 [&] {
                   double v = 0;
                   if (r.f32.size() >= n || !s.number(v) || !std::isfinite(v) ||
                       std::fabs(v) > std::numeric_limits<float>::max())
                     return false;
                   r.f32.push_back(static_cast<float>(v));
                   return true;
                 }) &&
           r.f32.size() == n;
  }
  if (in.datatype == "INT32") {
    r.ids.reserve(room);
    return array(s,
                 [&] {
                   std::uint64_t v = 0;
                   if (r.ids.size() >= n || !s.unsigned_integer(v) ||
                       v >= static_cast<std::uint64_t>(m.vocab))
                     return false;
                   r.ids.push_back(static_cast<std::int32_t>(v));
                   return true;
                 }) &&
           r.ids.size() == n;
  }
  return false;  // BYTES and anything else: the general parser
}

bool read_input(Scanner& s, const ModelShape& m, Input& in, InferRequest& r) {
  return object(s, [&](std::string_view key) {
    std::string_view ignored;
    if (key == "name" && !in.has_name) return in.has_name = s.string(ignored);
    if (key == "datatype" && !in.has_datatype) return in.has_datatype = s.string(in.datatype);
    if (key == "shape" && !in.has_shape) return in.has_shape = read_shape(s, in);
    if (key == "data" && !in.has_data) return in.has_data = read_data(s, m, in, r);
    return false;
  });
}

bool read_outputs(Scanner& s, InferRequest& r) {
  return array(s, [&] {
    bool named = false;
    return object(s,
                  [&](std::string_view key) {
                    std::string_view name;
                    if (key != "name" || named || !s.string(name)) return false;
                    if (name != kLogits && name != kProbabilities && name != kLabels) return false;
                    r.outputs.emplace_back(name);
                    return named = true;
                  }) &&
           named;
  });
}

bool read_parameters(Scanner& s, SequenceParams& q) {
  bool id = false, start = false, end = false;
  const bool ok = object(s, [&](std::string_view key) {
    if (key == "sequence_id" && !id) {
      id = true;
      if (s.peek() == '"') {
        std::string_view text;
        if (!s.string(text) || text.empty() || text.size() > 128) return false;
        q.id = std::string(text);
        return true;
      }
      std::uint64_t v = 0;
      if (!s.unsigned_integer(v)) return false;
      q.id = std::to_string(v);
      return true;
    }
    if (key == "sequence_start" && !start) return start = s.boolean(q.start);
    if (key == "sequence_end" && !end) return end = s.boolean(q.end);
    return false;
  });
  if (!ok) return false;
  if (!id) return !q.start && !q.end;
  q.present = q.id != "0";
  return q.present;
}

// The general parser's checks of shape and payload, for the kinds the fast path reads.
bool accept(const ModelShape& m, const Input& in, InferRequest& r) {
  const auto& shape = in.shape;
  const bool image = m.kind == InputKind::image_sequence || m.kind == InputKind::whole_image;
  if (r.sequence.present) {
    if (!m.streamable) return false;
    r.count = 1;
    if (m.kind == InputKind::text) {
      if (in.datatype != "INT32" || shape.size() != 2 || shape[0] != 1 || shape[1] < 1)
        return false;
      r.payload = Payload::tokens;
      r.steps = static_cast<int>(shape[1]);
      return true;
    }
    if (shape.size() != 3 || shape[0] != 1 || shape[1] < 1 || shape[2] != m.features) return false;
    r.steps = static_cast<int>(shape[1]);
    if (in.datatype == "UINT8" && m.kind == InputKind::image_sequence) {
      r.payload = Payload::steps_u8;
      return true;
    }
    r.payload = Payload::steps_f32;
    return in.datatype == "FP32";
  }
  if (m.kind == InputKind::text || shape.size() != 3 || shape[0] < 1) return false;
  r.count = shape[0];
  if (image && in.datatype == "UINT8") {
    r.payload = Payload::images;
    return shape[1] == m.rows && shape[2] == m.cols;
  }
  if (in.datatype != "FP32" || m.kind == InputKind::whole_image) return false;
  const bool fixed = m.kind == InputKind::image_sequence;
  r.payload = Payload::steps_f32;
  r.steps = static_cast<int>(shape[1]);
  return shape[2] == m.features && (!fixed || shape[1] == m.steps) && shape[1] >= 1;
}

}  // namespace

std::optional<InferRequest> parse_infer_request_fast(std::string_view body, const ModelShape& m) {
  if (!valid_utf8(body)) return std::nullopt;
  Scanner s(body);
  InferRequest r;
  Input in;
  bool has_id = false, has_inputs = false, has_outputs = false, has_parameters = false;
  // Streaming or not decides nothing while reading (the data's type comes from its datatype),
  // so the keys may come in any order except data after datatype and shape.
  const bool ok = object(s, [&](std::string_view key) {
    if (key == "id" && !has_id) {
      std::string_view id;
      if (!s.string(id)) return false;
      r.id = std::string(id);
      return has_id = true;
    }
    if (key == "inputs" && !has_inputs) {
      int count = 0;
      return has_inputs =
                 array(s, [&] { return count++ == 0 && read_input(s, m, in, r); }) && count == 1;
    }
    if (key == "outputs" && !has_outputs) return has_outputs = read_outputs(s, r);
    if (key == "parameters" && !has_parameters)
      return has_parameters = read_parameters(s, r.sequence);
    return false;
  });
  if (!ok || !s.at_end() || !has_inputs || !in.has_data || !accept(m, in, r)) return std::nullopt;
  return r;
}

}  // namespace recur::serve
