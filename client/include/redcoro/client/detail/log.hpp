#pragma once

// What a source file that logs includes instead of <spdlog/spdlog.h>: the logger, and a
// declaration that fmt's formatting engine is compiled once, in libfmt. fmt 9 does not
// declare it so itself, and without this every file that logs compiled the whole engine
// (integers, floats, the dragon4 fallback) again: about a fifth of such a file's build time.
// A module whose sources include this links spdlog::spdlog privately, so that spdlog is
// used as the compiled library it is rather than compiled inline into each file.

#include <spdlog/logger.h>

// g++ only: the template's parameter type is spelled with std::conditional, which clang
// mangles differently from the g++ that built Debian's libfmt, so a clang program would not
// find the symbol (clang compiles the engine in each file instead, as before).
#if defined(FMT_VERSION) && FMT_VERSION >= 90000 && FMT_VERSION < 100000 && \
    !defined(FMT_HEADER_ONLY) && defined(__GNUC__) && !defined(__clang__)
FMT_BEGIN_NAMESPACE
namespace detail {
extern template FMT_API void vformat_to<char>(buffer<char>&, string_view,
                                              basic_format_args<FMT_BUFFER_CONTEXT(char)>,
                                              locale_ref);
}  // namespace detail
FMT_END_NAMESPACE
#endif
