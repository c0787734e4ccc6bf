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

#include "recur/checkpoint.hpp"
#include "recur/error.hpp"
#include "recur/export.hpp"
#include "recur/fit.hpp"
#include "recur/predictor.hpp"
#include "recur/safetensors.hpp"
#include "recur/text.hpp"

namespace py = pybind11;

namespace recur::python {

// What recur::export_onnx wrote, as a dict (ImageModel's and TextModel's export_onnx).
py::dict onnx_export_dict(const Predictor& predictor, const std::string& path);

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
  explicit TextModel(const std::string& path, const std::string& precision = "fp32") : path_(path) {
    try {
      predictor_ = std::make_unique<Predictor>(
          path, PredictorOptions{parse_infer_precision(precision, "precision")});
      predictor_->text();  // Error when the checkpoint has no vocabulary
    } catch (const Error& e) {
      raise_for(e, path);
    }
  }

  int num_classes() const { return predictor_->num_classes(); }

  py::dict config() const {
    const TextCodec& codec = predictor_->text();
    py::dict d = py::module_::import("json").attr("loads")(to_json(predictor_->model().spec()));
    d["vocabulary"] = codec.vocab.size();
    d["max_len"] = codec.max_len;
    d["truncate"] = to_string(codec.truncate);
    d["class_names"] = codec.class_names;
    return d;
  }

  py::dict metadata() const {
    py::dict d;
    for (const auto& [k, v] : predictor_->metadata()) d[py::str(k)] = v;
    return d;
  }

  // (labels int64 [N], probabilities float32 [N, C]); each text on its own, so a text's result
  // never depends on the others. ValueError for a text the model cannot read (invalid UTF-8,
  // over 1 MiB, empty or whitespace only).
  py::tuple predict_text(const std::vector<std::string>& texts) {
    for (std::size_t i = 0; i < texts.size(); ++i)
      if (const std::string problem = predictor_->text_problem(texts[i]); !problem.empty())
        throw py::value_error("texts[" + std::to_string(i) + "] " + problem);
    Predictions r;
    {
      py::gil_scoped_release release;
      r = predictor_->predict_texts(texts);
    }
    const auto n = static_cast<py::ssize_t>(texts.size());
    py::array_t<std::int64_t> labels(n);
    py::array_t<float> probs({n, static_cast<py::ssize_t>(r.classes)});
    std::copy(r.probabilities.begin(), r.probabilities.end(), probs.mutable_data());
    auto l = labels.mutable_unchecked<1>();
    for (py::ssize_t i = 0; i < n; ++i) l(i) = r.labels[static_cast<std::size_t>(i)];
    return py::make_tuple(labels, probs);
  }

  py::dict export_onnx_file(const std::string& path) const {
    return onnx_export_dict(*predictor_, path);
  }

  std::string repr() const {
    return "<recur text model " + path_ + ": " + std::to_string(predictor_->model().num_params()) +
           " parameters, vocabulary " + std::to_string(predictor_->text().vocab.size()) + ">";
  }

 private:
  std::string path_;
  std::unique_ptr<Predictor> predictor_;
};

py::tuple side(const TextSet& s) {
  py::array_t<std::int64_t> y(static_cast<py::ssize_t>(s.labels.size()));
  auto u = y.mutable_unchecked<1>();
  for (std::size_t i = 0; i < s.labels.size(); ++i) u(static_cast<py::ssize_t>(i)) = s.labels[i];
  return py::make_tuple(py::cast(s.texts), y);
}

}  // namespace

py::dict onnx_export_dict(const Predictor& predictor, const std::string& path) {
  const OnnxExport r = recur::export_onnx(predictor, path);
  py::dict d;
  d["path"] = r.path;
  d["tokenizer_path"] =
      r.tokenizer_path.empty() ? py::object(py::none()) : py::str(r.tokenizer_path);
  d["inputs"] = r.inputs;
  d["operators"] = r.nodes;
  d["bytes"] = r.bytes;
  return d;
}

void add_text_bindings(py::module_& m) {
  py::class_<TextModel, std::shared_ptr<TextModel>>(m, "TextModel")
      .def(py::init<const std::string&, const std::string&>(), py::arg("path"),
           py::arg("precision") = "fp32")
      .def_property_readonly("config", &TextModel::config)
      .def_property_readonly("metadata", &TextModel::metadata)
      .def_property_readonly("num_classes", &TextModel::num_classes)
      .def("predict_text", &TextModel::predict_text, py::arg("texts"))
      .def("export_onnx", &TextModel::export_onnx_file, py::arg("path"))
      .def("__repr__", &TextModel::repr);
  m.def(
      "is_text_model",
      [](const std::string& path) {
        try {
          return is_text_model(read_safetensors(path).metadata);
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
