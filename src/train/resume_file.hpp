// A run's resume.safetensors, whatever trains it (train() on images, fit on text
// and arrays): the parameter arena under its tensor names, the optimizer's state buffers as
// "optimizer.NAME", and metadata holding the caller's entries, "recur.optimizer" and
// "recur.position" (JSON: where the run stands, plus "optimizer_steps"). One atomic file, so a
// run killed at any point keeps its previous checkpoint.
#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>

#include "recur/checkpoint.hpp"
#include "recur/optim.hpp"
#include "recur/params.hpp"
#include "recur/safetensors.hpp"

namespace recur {

// Writes `path`; `position` gets "optimizer_steps" added.
void write_resume_file(const std::string& path, const ParamLayout& layout, const float* params,
                       Optimizer& opt, nlohmann::json position, const Metadata& meta);

// Reads `path` for --resume: Error("--resume", ...) when it does not exist, Error(path, ...)
// when it is not a resume checkpoint (no "recur.position"). The caller checks the metadata
// before read_resume_state takes the state out of it.
SafetensorsFile open_resume_file(const std::string& path);

// Copies the file's tensors into params and opt (names, dtypes and shapes checked, errors naming
// `path`), sets the optimizer's step count, and returns the position (without
// "optimizer_steps").
nlohmann::json read_resume_state(const std::string& path, const SafetensorsFile& file,
                                 const ParamLayout& layout, float* params, Optimizer& opt);

// Data-parallel runs: rank 0 read the checkpoint; every other rank takes the parameters, the
// optimizer state and `bytes` of position at `position` from it. A no-op for one process.
void share_resume_state(float* params, std::size_t n, Optimizer& opt, void* position,
                        std::size_t bytes);

}  // namespace recur
