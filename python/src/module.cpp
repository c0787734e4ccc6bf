// recur._recur: the Python binding of recur (pybind11). The public API is python/recur/__init__.py,
// which adds docstrings, keyword handling and the history object on top of what is here.
//
// Arrays come in as NumPy arrays that must already have the right dtype, shape and C layout
// (nothing is converted silently); they are read in place. Compute runs with the GIL released.
// recur::Error becomes ValueError (bad input) or OSError (a file that cannot be read or written),
// with the command line's message.
#include <pybind11/functional.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <exception>
#include <filesystem>
#include <memory>
#include <ostream>
#include <streambuf>
#include <string>
#include <utility>
#include <vector>

#include "recur/checkpoint.hpp"
#include "recur/error.hpp"
#include "recur/fit.hpp"
#include "recur/layers.hpp"
#include "recur/predictor.hpp"
#include "recur/safetensors.hpp"
#include "recur/sources.hpp"
#include "recur/train.hpp"
#include "recur/train_options.hpp"

namespace py = pybind11;

namespace recur::python {

void add_text_bindings(py::module_& m);  // text.cpp
// What recur::export_onnx wrote, as a dict (text.cpp).
py::dict onnx_export_dict(const Predictor& predictor, const std::string& path);

namespace {

// Raises `type` (a Python exception class) with `message`.
[[noreturn]] void raise(PyObject* type, const std::string& message) {
  PyErr_SetString(type, message.c_str());
  throw py::error_already_set();
}

// A recur::Error from reading or writing `path`: OSError subclasses when the file system is the
// cause (missing, a folder, no permission), ValueError when the contents are bad.
[[noreturn]] void raise_file_error(const Error& e, const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::exists(path, ec)) raise(PyExc_FileNotFoundError, e.what());
  if (fs::is_directory(path, ec)) raise(PyExc_IsADirectoryError, e.what());
  const std::string& r = e.reason();
  if (r.find("cannot open") != std::string::npos || r.find("cannot create") != std::string::npos ||
      r.find("failed") != std::string::npos || r.find("does not exist") != std::string::npos)
    raise(PyExc_OSError, e.what());
  raise(PyExc_ValueError, e.what());
}

std::string shape_text(const py::array& a) {
  std::string s = "(";
  for (py::ssize_t k = 0; k < a.ndim(); ++k)
    s += (k ? ", " : "") + std::to_string(a.shape(k)) + (a.ndim() == 1 ? "," : "");
  return s + ")";
}

std::string dtype_text(const py::array& a) {
  return py::str(a.dtype()).cast<std::string>();
}

void require_c_contiguous(const py::array& a, const std::string& name) {
  if (!(a.flags() & py::array::c_style))
    raise(PyExc_ValueError, name +
                                " is not C-contiguous (a strided view such as x[:, ::2] or "
                                "x.T); pass np.ascontiguousarray(" +
                                name + ")");
}

// Labels as int32: any integer dtype, one per sample, each in [0, num_classes).
std::vector<std::int32_t> read_labels(const py::array& y, std::int64_t count,
                                      const std::string& name, int num_classes) {
  const char kind = y.dtype().kind();
  if (kind != 'i' && kind != 'u')
    raise(PyExc_TypeError, name + " must hold integer class labels, got dtype " + dtype_text(y));
  if (y.ndim() != 1)
    raise(PyExc_ValueError,
          name + " must be one label per sample, shape (N,), got shape " + shape_text(y));
  if (y.shape(0) != count)
    raise(PyExc_ValueError,
          fmt::format("{} holds {} labels but there are {} samples", name, y.shape(0), count));
  // Any integer dtype and layout, read through NumPy's own conversion to int64.
  py::array_t<std::int64_t, py::array::c_style | py::array::forcecast> wide(y);
  std::vector<std::int32_t> out(static_cast<std::size_t>(count));
  const std::int64_t* v = wide.data();
  for (std::int64_t i = 0; i < count; ++i) {
    if (v[i] < 0 || (num_classes > 0 && v[i] >= num_classes) || v[i] > INT32_MAX)
      raise(PyExc_ValueError,
            num_classes > 0 ? fmt::format("{}[{}] = {} is not a class of the model (0..{})", name,
                                          i, v[i], num_classes - 1)
                            : fmt::format("{}[{}] = {} is negative or too large for a class label",
                                          name, i, v[i]));
    out[static_cast<std::size_t>(i)] = static_cast<std::int32_t>(v[i]);
  }
  return out;
}

// Writes what train() prints to Python's sys.stdout, a line at a time, taking the GIL for it.
// An exception from the write (KeyboardInterrupt, a closed stream) is kept for rethrow(): a
// stream's flush would swallow it.
class PythonStdout : public std::streambuf {
 public:
  ~PythonStdout() override = default;
  void rethrow() {
    if (failed_) std::rethrow_exception(std::exchange(failed_, nullptr));
  }

 protected:
  int overflow(int c) override {
    if (c != EOF) pending_ += static_cast<char>(c);
    return c;
  }
  std::streamsize xsputn(const char* s, std::streamsize n) override {
    pending_.append(s, static_cast<std::size_t>(n));
    return n;
  }
  int sync() override {
    if (pending_.empty()) return 0;
    py::gil_scoped_acquire gil;
    try {
      py::object out = py::module_::import("sys").attr("stdout");
      if (!out.is_none()) {
        out.attr("write")(pending_);
        out.attr("flush")();
      }
    } catch (const py::error_already_set&) {
      if (!failed_) failed_ = std::current_exception();
    }
    pending_.clear();
    return 0;
  }

 private:
  std::string pending_;
  std::exception_ptr failed_;
};

// A discarding stream for verbose=False.
class NullBuffer : public std::streambuf {
 protected:
  int overflow(int c) override { return c; }
  std::streamsize xsputn(const char*, std::streamsize n) override { return n; }
};

}  // namespace

// A model of images, either checkpoint format (version 1 through its layer form): whole images
// (MLP, CNN) or sequences through the view in its metadata. Predictions come from the library's
// Predictor, as `recur predict`'s do, so the two agree bit for bit. Sequence models also take
// float32 sequences [N, steps, features], the model's inputs as they are. The Predictor may be
// shared by threads, so calls run without a lock, the GIL released.
class ImageModel {
 public:
  explicit ImageModel(const std::string& path) : path_(path) {
    try {
      predictor_ = std::make_unique<Predictor>(path);
      if (predictor_->input_kind() != InputKind::image_sequence &&
          predictor_->input_kind() != InputKind::whole_image)
        throw Error(path, "not an image model (a text or array model)");
      rows_ = predictor_->image_rows();
      cols_ = predictor_->image_cols();
    } catch (const Error& e) {
      raise_file_error(e, path);
    }
  }

  int num_classes() const { return predictor_->num_classes(); }
  py::dict export_onnx_file(const std::string& path) const {
    return onnx_export_dict(*predictor_, path);
  }

  py::dict config_dict() const {
    const ModelSpec& spec = predictor_->model().spec();
    py::dict d = py::module_::import("json").attr("loads")(to_json(spec));
    d["layers_text"] = layer_list_text(spec.layers);
    // The short form's settings, read off its layers (model_spec_from_config's chain).
    for (const LayerSpec& l : spec.layers) {
      if (l.type == "recurrent" && !d.contains("cell")) {
        d["cell"] = to_string(l.cell);
        d["hidden"] = l.size;
        d["num_layers"] = l.layers;  // "layers" is the layer list
        d["bidirectional"] = l.bidirectional;
        d["dropout"] = l.dropout;
      } else if (l.type == "pool" && !d.contains("pooling")) {
        d["pooling"] = to_string(l.pooling);
      } else if (l.type == "linear" && l.name == "proj") {
        d["projection"] = l.size;
      }
    }
    d["view"] = view_name();
    const Metadata& meta = predictor_->metadata();
    auto seed = meta.find("recur.view_seed");
    d["view_seed"] = seed == meta.end() ? 0 : std::stoll(seed->second);
    d["image_rows"] = rows_;
    d["image_cols"] = cols_;
    if (reads_sequences()) {
      d["steps"] = steps();
      d["input_size"] = features();
    }
    d["format"] = predictor_->format();
    return d;
  }

  py::dict metadata() const {
    py::dict d;
    for (const auto& [k, v] : predictor_->metadata()) d[py::str(k)] = v;
    return d;
  }

  std::string path() const { return path_; }
  std::string repr() const {
    return "<recur.Model " + path_ + ": " + layer_list_text(predictor_->model().spec().layers) +
           ", " + std::to_string(predictor_->model().num_params()) + " parameters>";
  }

  py::tuple predict(const py::array& x, bool logits) {
    const std::int64_t n = check_input(x);
    const int C = num_classes();
    const Predictions r = run(x, n);
    py::array_t<std::int64_t> labels(n);
    py::array_t<float> probs({n, static_cast<std::int64_t>(C)});
    py::array_t<float> raw({n, static_cast<std::int64_t>(C)});
    std::copy(r.probabilities.begin(), r.probabilities.end(), probs.mutable_data());
    std::copy(r.logits.begin(), r.logits.end(), raw.mutable_data());
    // The likeliest class as `recur predict` prints it: the first largest probability.
    const float* p = r.probabilities.data();
    std::int64_t* l = labels.mutable_data();
    for (std::int64_t i = 0; i < n; ++i)
      l[i] = std::max_element(p + i * C, p + (i + 1) * C) - (p + i * C);
    if (logits) return py::make_tuple(labels, probs, raw);
    return py::make_tuple(labels, probs);
  }

  py::dict evaluate(const py::array& x, const py::array& y) {
    const std::int64_t n = check_input(x);
    const int C = num_classes();
    const std::vector<std::int32_t> labels = read_labels(y, n, "y", C);
    const Predictions r = run(x, n);
    double loss_sum = 0;
    int correct = 0;
    for (std::int64_t start = 0; start < n; start += 256) {
      const int b = static_cast<int>(std::min<std::int64_t>(256, n - start));
      int hits = 0;
      loss_sum += softmax_cross_entropy<float>(r.logits.data() + start * C, labels.data() + start,
                                               b, C, 1.0f, nullptr, &hits);
      correct += hits;
    }
    py::dict d;
    d["count"] = n;
    d["correct"] = correct;
    d["accuracy"] = n ? static_cast<double>(correct) / n : 0.0;
    d["loss"] = n ? loss_sum / n : 0.0;
    return d;
  }

  void save(const std::string& path) const {
    try {
      py::gil_scoped_release nogil;
      save_checkpoint(path, predictor_->model(), predictor_->metadata());
    } catch (const Error& e) {
      raise_file_error(e, path);
    }
  }

 private:
  bool reads_sequences() const { return predictor_->input_kind() == InputKind::image_sequence; }
  int steps() const { return predictor_->steps(); }
  int features() const { return predictor_->features(); }
  std::string view_name() const { return predictor_->view_name(); }

  // uint8 images [N, rows, cols], or (sequence models) float32 sequences [N, steps, features].
  std::int64_t check_input(const py::array& x) const {
    const bool images = x.dtype().is(py::dtype::of<std::uint8_t>());
    const bool floats = reads_sequences() && x.dtype().is(py::dtype::of<float>());
    if (!images && !floats)
      raise(PyExc_TypeError,
            reads_sequences()
                ? fmt::format("x must be uint8 images [N, {}, {}] or float32 sequences [N, {}, "
                              "{}], got dtype {}",
                              rows_, cols_, steps(), features(), dtype_text(x))
                : fmt::format("x must be uint8 images [N, {}, {}], got dtype {}", rows_, cols_,
                              dtype_text(x)));
    if (x.ndim() != 3)
      raise(PyExc_ValueError,
            fmt::format("x must have 3 dimensions, [N, {}, {}], got shape {}{}",
                        images ? rows_ : steps(), images ? cols_ : features(), shape_text(x),
                        x.ndim() == 2 ? " (one sample? use x[None])" : ""));
    const std::int64_t a = x.shape(1), b = x.shape(2);
    if (images && (a != rows_ || b != cols_))
      raise(PyExc_ValueError,
            fmt::format("the model reads {}x{} images ({} view) but x holds {}x{} images", rows_,
                        cols_, view_name(), a, b));
    if (floats && (a != steps() || b != features()))
      raise(PyExc_ValueError, fmt::format("the model reads sequences of {} steps x {} features "
                                          "but x is [N, {}, {}]",
                                          steps(), features(), a, b));
    require_c_contiguous(x, "x");
    return x.shape(0);
  }

  // uint8 images through the checkpoint's view, or float sequences as they are; the library
  // checks that floats are finite (ValueError naming the element).
  Predictions run(const py::array& x, std::int64_t n) const {
    py::gil_scoped_release nogil;
    if (x.dtype().is(py::dtype::of<float>()))
      return predictor_->predict_sequences(static_cast<const float*>(x.data()), n, steps());
    return predictor_->predict_images(static_cast<const std::uint8_t*>(x.data()), n);
  }

  std::string path_;
  std::unique_ptr<Predictor> predictor_;
  int rows_ = 0, cols_ = 0;
};

namespace {

// The arrays of the MNIST files in `dir`, owned by NumPy without a copy.
py::tuple load_mnist_arrays(const std::string& dir, bool train) {
  auto set = std::make_shared<ImageSet>();
  try {
    py::gil_scoped_release nogil;
    *set = load_mnist(dir, train);
  } catch (const Error& e) {
    raise_file_error(e, e.subject());
  }
  // Each array keeps the set alive through a capsule holding a shared_ptr.
  auto owner = [&set] {
    return py::capsule(new std::shared_ptr<ImageSet>(set),
                       [](void* p) { delete static_cast<std::shared_ptr<ImageSet>*>(p); });
  };
  py::array_t<std::uint8_t> x(
      {set->count, static_cast<std::int64_t>(set->rows), static_cast<std::int64_t>(set->cols)},
      set->pixels.data(), owner());
  py::array_t<std::int32_t> y({set->count}, set->labels.data(), owner());
  return py::make_tuple(x, y);
}

// The `recur train` flag for a Python keyword: hidden -> --hidden, view_seed -> --view-seed.
std::string option_name(std::string name) {
  std::replace(name.begin(), name.end(), '_', '-');
  return name;
}

// A keyword's value as its option's text: True/False for a switch, a number or text otherwise.
std::string option_value(const TrainOption& opt, const std::string& name, const py::object& value) {
  const bool is_switch = opt.kind == TrainOption::Kind::toggle;
  if (is_switch != py::isinstance<py::bool_>(value))
    raise(PyExc_TypeError, is_switch
                               ? "option '" + name + "' is a switch: pass True or False, got " +
                                     py::repr(value).cast<std::string>()
                               : "option '" + name + "' takes a number or text, not " +
                                     py::repr(value).cast<std::string>());
  if (is_switch) return value.cast<bool>() ? "true" : "false";
  if (py::isinstance<py::str>(value)) return value.cast<std::string>();
  if (PyIndex_Check(value.ptr()))  // int, numpy integers
    return py::str(py::int_(value)).cast<std::string>();
  if (PyFloat_Check(value.ptr()) || PyNumber_Check(value.ptr()))  // float, numpy floats
    return fmt::format("{}", py::float_(value).cast<double>());   // shortest exact text
  raise(PyExc_TypeError,
        "option '" + name + "' takes a number or text, not " + py::repr(value).cast<std::string>());
}

// The keyword arguments set through the library's option table (recur/train_options.hpp), as
// recur train sets its flags, then config= and resume= as --config and --resume.
TrainOptions options_from_keywords(const py::dict& keywords) {
  TrainOptions opts = default_train_options();
  std::set<std::string> given;
  std::string config, resume;
  try {
    for (const auto& [key, item] : keywords) {
      const auto value = py::reinterpret_borrow<py::object>(item);
      const std::string name = py::str(key).cast<std::string>();
      const std::string option = option_name(name);
      if (option == "config" || option == "resume") {
        if (!py::isinstance<py::str>(value))
          raise(PyExc_TypeError, "option '" + name + "' takes a path");
        (option == "config" ? config : resume) = value.cast<std::string>();
        continue;
      }
      const TrainOption* opt = find_train_option(option);
      if (!opt) raise(PyExc_ValueError, "unknown option '" + name + "' (see recur train --help)");
      opt->set(opts, option_value(*opt, name, value));
      given.insert(option);
    }
    return resolve_train_options(opts, given, config, resume);
  } catch (const Error& e) {
    raise(PyExc_ValueError, e.what());
  }
}

// One image set of `parts` (a list of (uint8 images [N, rows, cols], labels) concatenated in
// order), checked as a file's contents would be; raises TypeError / ValueError naming x, y or
// val[0], val[1].
std::shared_ptr<ImageSet> images_from_parts(const py::list& parts) {
  auto set = std::make_shared<ImageSet>();
  set->source = "the training arrays";
  std::vector<std::vector<std::int32_t>> labels;
  int max_label = 0;
  for (std::size_t k = 0; k < parts.size(); ++k) {
    const auto part = parts[k].cast<py::tuple>();
    const std::string xn = k + 1 == parts.size() ? "x" : "val[0]";
    const std::string yn = k + 1 == parts.size() ? "y" : "val[1]";
    const auto x = part[0].cast<py::array>();
    const auto y = part[1].cast<py::array>();
    if (!x.dtype().is(py::dtype::of<std::uint8_t>()))
      raise(PyExc_TypeError,
            xn +
                " must be uint8 images [N, rows, cols] (training reads images through a view), "
                "got dtype " +
                dtype_text(x));
    if (x.ndim() != 3)
      raise(PyExc_ValueError,
            xn + " must have 3 dimensions, [N, rows, cols], got shape " + shape_text(x));
    require_c_contiguous(x, xn);
    if (k == 0) {
      set->rows = static_cast<int>(x.shape(1));
      set->cols = static_cast<int>(x.shape(2));
    } else if (x.shape(1) != set->rows || x.shape(2) != set->cols) {
      raise(PyExc_ValueError, fmt::format("{} holds {}x{} images but val[0] holds {}x{}", xn,
                                          x.shape(1), x.shape(2), set->rows, set->cols));
    }
    if (x.shape(1) < 1 || x.shape(2) < 1 || x.shape(0) < 1)
      raise(PyExc_ValueError, xn + " holds no pixels: shape " + shape_text(x));
    labels.push_back(read_labels(y, x.shape(0), yn, 0));
    for (std::int32_t l : labels.back()) max_label = std::max(max_label, l);
    const auto* p = static_cast<const std::uint8_t*>(x.data());
    set->pixels.insert(set->pixels.end(), p, p + x.size());
    set->count += x.shape(0);
  }
  for (const auto& l : labels) set->labels.insert(set->labels.end(), l.begin(), l.end());
  set->num_classes = max_label + 1;
  if (set->num_classes < 2)
    raise(PyExc_ValueError, "y holds a single class (" + std::to_string(max_label) +
                                "); a classifier needs at least 2");
  return set;
}

// Trains as `recur train` does with the given options (Python keywords named like the flags)
// on `parts` (a list of (uint8 images, labels) concatenated in order) or, when empty, on the
// files of the `data` option. Returns the run folder's last model and the history.
py::tuple train(const py::dict& options, const py::list& parts, const py::object& callback,
                bool verbose) {
  TrainOptions opts = options_from_keywords(options);
  if (!parts.empty()) opts.images = images_from_parts(parts);

  // The history, and the callback at every logged step. Ctrl-C is checked at every step when
  // training runs on the main thread (Python runs signal handlers there only).
  const py::module_ threading = py::module_::import("threading");
  const py::object main_ident = threading.attr("main_thread")().attr("ident");
  const bool main_thread = main_ident.equal(threading.attr("get_ident")());
  PythonStdout py_out;
  std::vector<std::int64_t> step, epoch, val_step, val_epoch;
  std::vector<double> loss, accuracy, lr, sps, val_loss, val_accuracy;
  opts.on_event = [&](const TrainEvent& e) -> bool {
    if (e.kind == TrainEvent::Kind::validation) {
      val_step.push_back(e.step);
      val_epoch.push_back(e.epoch);
      val_loss.push_back(e.loss);
      val_accuracy.push_back(e.accuracy);
      return true;
    }
    if (e.kind == TrainEvent::Kind::step) {
      py_out.rethrow();
      if (!main_thread) return true;
      py::gil_scoped_acquire gil;
      if (PyErr_CheckSignals() != 0) throw py::error_already_set();
      return true;
    }
    step.push_back(e.step);
    epoch.push_back(e.epoch);
    loss.push_back(e.loss);
    accuracy.push_back(e.accuracy);
    lr.push_back(e.lr);
    sps.push_back(e.samples_per_second);
    if (callback.is_none()) return true;
    py::gil_scoped_acquire gil;
    py::dict info;
    info["step"] = e.step;
    info["total_steps"] = e.total_steps;
    info["epoch"] = e.epoch;
    info["loss"] = e.loss;
    info["accuracy"] = e.accuracy;
    info["lr"] = e.lr;
    info["samples_per_second"] = e.samples_per_second;
    const py::object verdict = callback(info);
    return !(py::isinstance<py::bool_>(verdict) && !verdict.cast<bool>());
  };

  NullBuffer null_out;
  std::ostream out(verbose ? static_cast<std::streambuf*>(&py_out) : &null_out);
  try {
    py::gil_scoped_release nogil;
    recur::train(opts, out, false);
  } catch (const Error& e) {
    raise(PyExc_ValueError, e.what());
  }
  out.flush();
  py_out.rethrow();

  // Text and array models are the module's TextModel (recur.load reads them the same way).
  const std::string last = opts.out_dir + "/last.safetensors";
  const py::object model = is_text_model(Predictor(last).metadata())
                               ? py::module_::import("recur._recur").attr("TextModel")(last)
                               : py::cast(std::make_shared<ImageModel>(last));
  py::dict history;
  history["step"] = py::array(py::cast(step));
  history["epoch"] = py::array(py::cast(epoch));
  history["loss"] = py::array(py::cast(loss));
  history["accuracy"] = py::array(py::cast(accuracy));
  history["lr"] = py::array(py::cast(lr));
  history["samples_per_second"] = py::array(py::cast(sps));
  history["val_step"] = py::array(py::cast(val_step));
  history["val_epoch"] = py::array(py::cast(val_epoch));
  history["val_loss"] = py::array(py::cast(val_loss));
  history["val_accuracy"] = py::array(py::cast(val_accuracy));
  history["out"] = opts.out_dir;
  return py::make_tuple(model, history);
}

}  // namespace

}  // namespace recur::python

PYBIND11_MODULE(_recur, m) {
  m.doc() = "recur's compiled core; use the recur package.";
  m.attr("__version__") = RECUR_VERSION;
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const recur::Error& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    } catch (const recur::InternalError& e) {
      PyErr_SetString(PyExc_RuntimeError,
                      (std::string("recur internal error: ") + e.what()).c_str());
    }
  });

  using recur::python::ImageModel;
  py::class_<ImageModel, std::shared_ptr<ImageModel>>(m, "ImageModel")
      .def(py::init<const std::string&>(), py::arg("path"))
      .def_property_readonly("config", &ImageModel::config_dict)
      .def_property_readonly("metadata", &ImageModel::metadata)
      .def_property_readonly("path", &ImageModel::path)
      .def_property_readonly("num_classes", &ImageModel::num_classes)
      .def("predict", &ImageModel::predict, py::arg("x"), py::arg("logits") = false)
      .def("evaluate", &ImageModel::evaluate, py::arg("x"), py::arg("y"))
      .def("save", &ImageModel::save, py::arg("path"))
      .def("export_onnx", &ImageModel::export_onnx_file, py::arg("path"))
      .def("__repr__", &ImageModel::repr);
  recur::python::add_text_bindings(m);
  m.def("load_mnist", &recur::python::load_mnist_arrays, py::arg("path"), py::arg("train"));
  m.def("train", &recur::python::train, py::arg("options"), py::arg("parts"), py::arg("callback"),
        py::arg("verbose"));
}
