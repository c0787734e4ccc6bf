// The layer list as text (recur train --model, the `model` key of a TOML config): layers
// separated by commas, each a type, an optional positional value and key=value settings.
//
//   conv2d 6 kernel=5 padding=2, relu, maxpool2d 2, flatten, linear 120, relu, linear
//   embedding 128, lstm 128 bidirectional, pool max, linear
//   rnn 50 untied=28, pool last, linear      (one weight set per step; sequences of 28 steps)
#include <fmt/format.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <sstream>

#include "recur/error.hpp"
#include "recur/layers.hpp"

namespace recur {

namespace {

std::vector<std::string> split(const std::string& text, char sep) {
  std::vector<std::string> parts;
  std::string cur;
  for (char c : text) {
    if (c == sep) {
      parts.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  parts.push_back(cur);
  return parts;
}

std::vector<std::string> words(const std::string& text) {
  std::istringstream in(text);
  std::vector<std::string> out;
  std::string w;
  while (in >> w) out.push_back(w);
  return out;
}

std::string trimmed(const std::string& s) {
  const auto a = s.find_first_not_of(" \t\r\n");
  if (a == std::string::npos) return "";
  return s.substr(a, s.find_last_not_of(" \t\r\n") - a + 1);
}

bool is_recurrent_word(const std::string& w) {
  return w == "lstm" || w == "gru" || w == "rnn" || w == "rnn_tanh" || w == "rnn_relu";
}

// Reads one layer; `where` names the flag or file, `at` the layer ("layer 3 'linear 10'").
class LayerReader {
 public:
  LayerReader(std::string where, std::string at) : where_(std::move(where)), at_(std::move(at)) {}

  [[noreturn]] void fail(const std::string& why) const {
    throw Error(where_, fmt::format("{}: {}", at_, why));
  }

  int integer(const std::string& key, const std::string& text, int lo, int hi) const {
    errno = 0;
    char* end = nullptr;
    const long long v = std::strtoll(text.c_str(), &end, 10);
    if (text.empty() || *end != '\0' || errno == ERANGE || v < lo || v > hi)
      fail(fmt::format("{} must be a whole number in [{}, {}], got '{}'", key, lo, hi, text));
    return static_cast<int>(v);
  }

  double probability(const std::string& key, const std::string& text) const {
    errno = 0;
    char* end = nullptr;
    const double v = std::strtod(text.c_str(), &end);
    if (text.empty() || *end != '\0' || errno == ERANGE || !std::isfinite(v) || v < 0 || v >= 1)
      fail(fmt::format("{} must be a number in [0, 1), got '{}'", key, text));
    return v;
  }

  bool boolean(const std::string& key, const std::string& text) const {
    if (text == "true" || text == "yes" || text == "1") return true;
    if (text == "false" || text == "no" || text == "0") return false;
    fail(fmt::format("{} must be true or false, got '{}'", key, text));
  }

 private:
  std::string where_, at_;
};

constexpr int kMaxWidth = 1 << 20;
constexpr int kMaxSteps = 1 << 20;  // ModelConfig's bound on steps

LayerSpec read_layer(const std::string& text, std::size_t index, const std::string& where) {
  const std::vector<std::string> w = words(text);
  const LayerReader r(where, fmt::format("layer {} '{}'", index, trimmed(text)));
  if (w.empty()) r.fail("is empty (two commas in a row, or a comma at the end?)");
  LayerSpec l;
  const std::string& type = w[0];
  std::size_t next = 1;
  // The positional value, when the next word is not key=value or a bare switch.
  auto positional = [&]() -> const std::string* {
    if (next < w.size() && w[next].find('=') == std::string::npos && w[next] != "bidirectional" &&
        w[next] != "bi")
      return &w[next++];
    return nullptr;
  };
  if (is_recurrent_word(type)) {
    l.type = "recurrent";
    l.cell = parse_cell(type == "rnn" ? "rnn_tanh" : type);
    const std::string* size = positional();
    if (!size) r.fail("needs its hidden size, e.g. '" + type + " 128'");
    l.size = r.integer("the hidden size", *size, 1, kMaxWidth);
  } else if (type == "embedding") {
    l.type = type;
    const std::string* size = positional();
    if (!size) r.fail("needs its width, e.g. 'embedding 128'");
    l.size = r.integer("the width", *size, 1, kMaxWidth);
  } else if (type == "linear") {
    l.type = type;
    if (const std::string* size = positional())
      l.size = r.integer("the width", *size, 1, kMaxWidth);  // none: the classes (a head)
  } else if (type == "conv2d" || type == "conv1d") {
    l.type = type;
    const std::string* size = positional();
    if (!size) r.fail("needs its output channels, e.g. '" + type + " 16 kernel=5'");
    l.size = r.integer("the channels", *size, 1, kMaxWidth);
  } else if (type == "maxpool2d") {
    l.type = type;
    const std::string* k = positional();
    if (!k) r.fail("needs its window, e.g. 'maxpool2d 2'");
    l.kernel = r.integer("the window", *k, 1, 4096);
  } else if (type == "pool") {
    l.type = type;
    const std::string* p = positional();
    if (!p) r.fail("needs last, mean or max, e.g. 'pool max'");
    try {
      l.pooling = parse_pooling(*p);
    } catch (const Error&) {
      r.fail("pooling must be last, mean or max, got '" + *p + "'");
    }
  } else if (type == "dropout") {
    l.type = type;
    const std::string* p = positional();
    if (!p) r.fail("needs its drop probability, e.g. 'dropout 0.3'");
    l.dropout = r.probability("the drop probability", *p);
  } else if (type == "relu" || type == "tanh" || type == "flatten") {
    l.type = type;
  } else {
    r.fail(
        "unknown layer type (known: embedding, linear, lstm, gru, rnn, rnn_relu, pool, dropout, "
        "relu, tanh, flatten, conv1d, conv2d, maxpool2d)");
  }
  for (; next < w.size(); ++next) {
    const std::string& word = w[next];
    const auto eq = word.find('=');
    if (eq == std::string::npos) {
      if ((word == "bidirectional" || word == "bi") && l.type == "recurrent") {
        l.bidirectional = true;
        continue;
      }
      if (word == "untied" && l.type == "recurrent")
        r.fail("untied needs the sequences' number of steps, e.g. 'untied=28'");
      r.fail(fmt::format("unexpected '{}' (settings are key=value)", word));
    }
    const std::string key = word.substr(0, eq), value = word.substr(eq + 1);
    const bool recurrent = l.type == "recurrent";
    const bool conv = l.type == "conv2d" || l.type == "conv1d";
    if (key == "name") {
      if (value.empty() || value.find_first_of(".\"\\") != std::string::npos)
        r.fail("name must be non-empty, without '.', '\"' or '\\'");
      l.name = value;
    } else if (key == "layers" && recurrent) {
      l.layers = r.integer("layers", value, 1, 64);
    } else if (key == "dropout" && recurrent) {
      l.dropout = r.probability("dropout", value);
    } else if (key == "untied" && recurrent) {
      // One weight set per step: the value is the number of steps every sequence must have.
      if (value == "0" || (!value.empty() && value[0] == '-'))
        r.fail("untied must be the sequences' number of steps (at least 1), got '" + value +
               "'; leave untied out for weights shared by all steps");
      l.untied_steps = r.integer("untied (the number of steps)", value, 1, kMaxSteps);
    } else if (key == "bidirectional" && recurrent) {
      l.bidirectional = r.boolean(key, value);
    } else if (key == "bias" && (recurrent || conv || l.type == "linear")) {
      l.bias = r.boolean(key, value);
    } else if (key == "vocab" && l.type == "embedding") {
      l.vocab = r.integer("vocab", value, 3, 1 << 24);
    } else if (key == "kernel" && conv) {
      l.kernel = r.integer("kernel", value, 1, 4096);
    } else if (key == "stride" && (conv || l.type == "maxpool2d")) {
      l.stride = r.integer("stride", value, 1, 4096);
    } else if (key == "padding" && (conv || l.type == "maxpool2d")) {
      l.padding = r.integer("padding", value, 0, 4096);
    } else {
      r.fail(fmt::format("'{}' is not a setting of {}", key, type));
    }
  }
  if ((l.type == "conv2d" || l.type == "conv1d") && l.kernel == 0) r.fail("needs kernel=K");
  return l;
}

}  // namespace

std::vector<LayerSpec> parse_layer_list(const std::string& text, const std::string& where) {
  if (words(text).empty()) throw Error(where, "is empty: give the layers, e.g. 'lstm 128, linear'");
  const std::vector<std::string> parts = split(text, ',');
  if (parts.size() > 1000) throw Error(where, "has more than 1000 layers");
  std::vector<LayerSpec> layers;
  for (std::size_t i = 0; i < parts.size(); ++i) layers.push_back(read_layer(parts[i], i, where));
  return layers;
}

std::string layer_list_text(const std::vector<LayerSpec>& layers) {
  std::string out;
  for (const LayerSpec& l : layers) {
    if (!out.empty()) out += ", ";
    std::string s;
    if (l.type == "recurrent") {
      s = fmt::format("{} {}", l.cell == CellKind::rnn_tanh ? "rnn" : to_string(l.cell), l.size);
      if (l.layers != 1) s += fmt::format(" layers={}", l.layers);
      if (l.bidirectional) s += " bidirectional";
      if (l.dropout > 0) s += fmt::format(" dropout={}", l.dropout);
      if (l.untied_steps > 0) s += fmt::format(" untied={}", l.untied_steps);
      if (!l.bias) s += " bias=false";
    } else if (l.type == "embedding") {
      s = fmt::format("embedding {}", l.size);
      if (l.vocab > 0) s += fmt::format(" vocab={}", l.vocab);
    } else if (l.type == "linear") {
      s = l.size > 0 ? fmt::format("linear {}", l.size) : std::string("linear");
      if (!l.bias) s += " bias=false";
    } else if (l.type == "conv2d" || l.type == "conv1d") {
      s = fmt::format("{} {} kernel={}", l.type, l.size, l.kernel);
      if (l.stride > 0) s += fmt::format(" stride={}", l.stride);
      if (l.padding > 0) s += fmt::format(" padding={}", l.padding);
      if (!l.bias) s += " bias=false";
    } else if (l.type == "maxpool2d") {
      s = fmt::format("maxpool2d {}", l.kernel);
      if (l.stride > 0) s += fmt::format(" stride={}", l.stride);
      if (l.padding > 0) s += fmt::format(" padding={}", l.padding);
    } else if (l.type == "pool") {
      s = "pool " + to_string(l.pooling);
    } else if (l.type == "dropout") {
      s = fmt::format("dropout {}", l.dropout);
    } else {
      s = l.type;
    }
    if (!l.name.empty()) s += " name=" + l.name;
    out += s;
  }
  return out;
}

}  // namespace recur
