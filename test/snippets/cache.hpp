#pragma once

// What the snippets of cache/README.md use without declaring it.
#include "common.hpp"

void log(const std::string& line);

// Stands for a protobuf message class.
namespace my {
struct Profile {
  bool AppendToString(std::string* out) const;
  bool ParseFromArray(const void* data, int size);
};
}  // namespace my
