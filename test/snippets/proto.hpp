#pragma once

// What the fragments of proto/README.md use without declaring it.
#include "common.hpp"

#include <cstddef>

std::string read_some_bytes();
extern std::vector<std::byte> payload_bytes;
