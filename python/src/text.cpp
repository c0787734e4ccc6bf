// recur._recur's text side: models built from layers that read text (a checkpoint of format 2
// with a vocabulary), and the text data sets (IMDb, aclImdb folders, label<TAB>text files).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <filesystem>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

#include "cli/sequence_data.hpp"
#include "recur/checkpoint.hpp"
#include "recur/error.hpp"
#include "recur/safetensors.hpp"
#include "recur/seq_train.hpp"
#include "recur/text.hpp"

namespace py = pybind11;

namespace recur::python {

namespace {

[[noreturn]] void raise_for(const Error& e, const std::string& path) {
  std::error_code ec;
  if (!path.empty() && !std::filesystem::exists(path, ec)) {
    PyErr_SetString(PyExc_FileNotFoundError, e.what());
    throw py::error_already_set();
  }
  PyErr_SetString(PyExc_ValueError, e.what());
  throw py::error_already_set();
}

class TextModel {
 public:
  explicit TextModel(const std::string& path) : path_(path) {
    try {
      loaded_ = load_layered_model(path);
      codec_ = cli::text_codec(loaded_.metadata, path);
    } catch (const Error& e) {
      raise_for(e, path);
    }
    loaded_.model->prepare();
    runner_ = std::make_unique<SequenceRunner>(*loaded_.model, 1);
  }

  int num_classes() const { return loaded_.model->spec().num_classes; }

  py::dict config() const {
    py::dict d = py::module_::import("json").attr("loads")(to_json(loaded_.model->spec()));
    d["vocabulary"] = codec_.vocab.size();
    d["max_len"] = codec_.max_len;
    d["truncate"] = to_string(codec_.truncate);
    d["class_names"] = codec_.class_names;
    return d;
  }

  py::dict metadata() const {
    py::dict d;
    for (const auto& [k, v] : loaded_.metadata) d[py::str(k)] = v;
    return d;
  }

  // (labels int64 [N], probabilities float32 [N, C]); each text on its own, so a text's result
  // never depends on the others.
  py::tuple predict_text(const std::vector<std::string>& texts) {
    TextSet set;
    set.source = "texts";
    set.num_classes = num_classes();
    for (std::size_t i = 0; i < texts.size(); ++i) {
      std::size_t bad = 0;
      if (!valid_utf8(texts[i], &bad))
        throw py::value_error("texts[" + std::to_string(i) + "]: invalid UTF-8 at byte " +
                              std::to_string(bad));
      if (texts[i].size() > kMaxTextBytes)
        throw py::value_error("texts[" + std::to_string(i) + "]: longer than " +
                              std::to_string(kMaxTextBytes) + " bytes");
    }
    set.texts = texts;
    set.labels.assign(texts.size(), 0);
    const int C = num_classes();
    const auto n = static_cast<py::ssize_t>(texts.size());
    py::array_t<std::int64_t> labels(n);
    py::array_t<float> probs({n, static_cast<py::ssize_t>(C)});
    std::vector<std::int32_t> pred(texts.size());
    {
      py::gil_scoped_release release;
      TokenSequences src(set, codec_.vocab, codec_.max_len, codec_.truncate);
      float* p = probs.mutable_data();
      for (std::size_t i = 0; i < texts.size(); ++i)
        runner_->infer_batch(src, {static_cast<std::int64_t>(i)}, pred.data() + i,
                             p + i * static_cast<std::size_t>(C));
    }
    auto l = labels.mutable_unchecked<1>();
    for (py::ssize_t i = 0; i < n; ++i) l(i) = pred[static_cast<std::size_t>(i)];
    return py::make_tuple(labels, probs);
  }

  std::string repr() const {
    return "<recur text model " + path_ + ": " + std::to_string(loaded_.model->num_params()) +
           " parameters, vocabulary " + std::to_string(codec_.vocab.size()) + ">";
  }

 private:
  std::string path_;
  LoadedLayeredModel loaded_;
  cli::TextCodec codec_;
  std::unique_ptr<SequenceRunner> runner_;
};

py::tuple side(const TextSet& s) {
  py::array_t<std::int64_t> y(static_cast<py::ssize_t>(s.labels.size()));
  auto u = y.mutable_unchecked<1>();
  for (std::size_t i = 0; i < s.labels.size(); ++i) u(static_cast<py::ssize_t>(i)) = s.labels[i];
  return py::make_tuple(py::cast(s.texts), y);
}

}  // namespace

void add_text_bindings(py::module_& m) {
  py::class_<TextModel, std::shared_ptr<TextModel>>(m, "TextModel")
      .def(py::init<const std::string&>(), py::arg("path"))
      .def_property_readonly("config", &TextModel::config)
      .def_property_readonly("metadata", &TextModel::metadata)
      .def_property_readonly("num_classes", &TextModel::num_classes)
      .def("predict_text", &TextModel::predict_text, py::arg("texts"))
      .def("__repr__", &TextModel::repr);
  m.def(
      "is_text_model",
      [](const std::string& path) {
        try {
          return cli::is_text_model(read_safetensors(path).metadata);
        } catch (const Error&) {
          return false;
        }
      },
      py::arg("path"));
  m.def(
      "load_text",
      [](const std::string& path) {
        try {
          const TextSplit split = load_text_splits(path);
          return py::make_tuple(side(split.train), side(split.test));
        } catch (const Error& e) {
          raise_for(e, path);
        }
      },
      py::arg("path"));
}

}  // namespace recur::python
