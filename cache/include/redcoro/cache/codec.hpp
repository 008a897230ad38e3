#pragma once

#include <redcoro/cache/detail/schema.hpp>
#include <redcoro/cache/error.hpp>

#include <concepts>
#include <string>
#include <string_view>
#include <system_error>

namespace redcoro::cache {

/// Stores a scalar as text that any Redis client reads as it is: a std::string as its bytes,
/// an integer in decimal, a float or double in its shortest round-trip form (`inf`, `-inf`,
/// `nan` for the others), a bool as `1` or `0` (`true` and `false` are read too), a described
/// enum as its enumerator's name, a duration as decimal milliseconds (`1500`, `0.25`) and a
/// system_clock time point as ISO-8601 UTC (`2026-12-06T07:00:00.123Z`). The default codec
/// for these types.
template <class T>
struct text_codec {
  static_assert(detail::is_text_v<T>, "redcoro::cache::text_codec: not a text scalar");

  /// Appends the text of `value` to `out`.
  static std::error_code encode(const T& value, std::string& out, codec_error& where) {
    if constexpr (std::is_same_v<T, std::string>) {
      out.append(value);
      return {};
    } else {
      return detail::encode_text(detail::desc_of<T>::value, &value, out, where);
    }
  }

  /// Reads `in`, all of it, into `out`.
  static std::error_code decode(std::string_view in, T& out, codec_error& where) {
    if constexpr (std::is_same_v<T, std::string>) {
      out.assign(in);
      return {};
    } else {
      return detail::decode_text(detail::desc_of<T>::value, in, &out, where);
    }
  }
};

/// Stores a value as JSON (the mapping is in cache/README.md): the default codec for
/// described structs, std::optional, std::vector and string-keyed maps. Decoding reads the
/// document once with simdjson's on-demand API, straight into `out`; encoding appends to the
/// output string with no intermediate document.
template <class T>
struct json_codec {
  static_assert(detail::is_json_v<T>, "redcoro::cache::json_codec: no JSON mapping for T");

  /// Appends the JSON text of `value` to `out`.
  static std::error_code encode(const T& value, std::string& out, codec_error& where) {
    return detail::encode_json(detail::desc_of<T>::value, &value, out, where);
  }

  /// Reads the JSON document `in` into `out`. Unknown object members are skipped; a missing
  /// member is an error unless its type is a std::optional (then it becomes nullopt).
  static std::error_code decode(std::string_view in, T& out, codec_error& where) {
    return detail::decode_json(detail::desc_of<T>::value, in, &out, where);
  }
};

namespace detail {

template <class T>
struct default_codec {};  // no encode/decode: T is not cacheable unless codec<T> is specialized

template <class T>
requires is_text_v<T>
struct default_codec<T> : text_codec<T> {
};

template <class T>
requires(!is_text_v<T> && is_json_v<T>) struct default_codec<T> : json_codec<T> {
};

}  // namespace detail

/// How values of type T are stored. The customization point: specialize it for your type
/// with two static functions,
///
/// ```
/// template <>
/// struct redcoro::cache::codec<my_type> {
///   static std::error_code encode(const my_type& value, std::string& out, codec_error& where);
///   static std::error_code decode(std::string_view in, my_type& out, codec_error& where);
/// };
/// ```
///
/// where encode appends to `out` and decode reads all of `in`; both return an error (any
/// category) and fill `where.message` (and `where.path` if useful) when they fail. Deriving
/// from text_codec<T> or json_codec<T> picks one of the built-in forms.
///
/// The default stores text scalars with text_codec and everything else with a JSON mapping
/// with json_codec. A specialization applies wherever T is stored on its own; as a member or
/// element inside a JSON value, a type keeps its JSON mapping if it has one, and otherwise its
/// codec's output becomes a JSON string (so it must be valid UTF-8).
template <class T>
struct codec : detail::default_codec<T> {};

/// True when values of T can be encoded and decoded: codec<T> has encode and decode.
template <class T>
concept cacheable = requires(const T& value, T& out, std::string& text, std::string_view in,
                             codec_error& where) {
  { codec<T>::encode(value, text, where) } -> std::same_as<std::error_code>;
  { codec<T>::decode(in, out, where) } -> std::same_as<std::error_code>;
};

/// Appends the stored form of `value` to `out` through codec<T>. On failure `out` is left as
/// it was and `where` says why (its `code` is the returned code).
template <class T>
std::error_code encode(const T& value, std::string& out, codec_error& where) {
  static_assert(cacheable<T>,
                "redcoro::cache: T cannot be cached. Describe it with BOOST_DESCRIBE_STRUCT "
                "(or BOOST_DESCRIBE_ENUM), use a supported type, or specialize "
                "redcoro::cache::codec<T>");
  const std::size_t size = out.size();
  // Nothing of an earlier failure may stay in `where` for a user codec to leave there.
  where.path.clear();
  where.message.clear();
  where.offset = codec_error::npos;
  std::error_code ec = codec<T>::encode(value, out, where);
  if (ec) {
    out.resize(size);
    where.code = ec;
  }
  return ec;
}

/// Reads the stored form `in` into `out` through codec<T>. Nothing refers to `in` afterwards.
/// On failure `out` holds a valid but unspecified value and `where` says why and where (its
/// `code` is the returned code). Decoding into the same object again reuses its buffers.
template <class T>
std::error_code decode(std::string_view in, T& out, codec_error& where) {
  static_assert(cacheable<T>,
                "redcoro::cache: T cannot be cached. Describe it with BOOST_DESCRIBE_STRUCT "
                "(or BOOST_DESCRIBE_ENUM), use a supported type, or specialize "
                "redcoro::cache::codec<T>");
  where.path.clear();
  where.message.clear();
  where.offset = codec_error::npos;
  std::error_code ec = codec<T>::decode(in, out, where);
  if (ec) where.code = ec;
  return ec;
}

}  // namespace redcoro::cache
