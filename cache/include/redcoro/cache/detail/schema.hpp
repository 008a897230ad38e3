#pragma once

// The type-erased description of a C++ type that the compiled codec core walks. Templates
// here only build constant tables (one per type, merged by the linker); every loop, every
// parse and every error message lives in cache/src/*.cpp, compiled once. That keeps the
// simdjson header (31k lines) out of users' translation units and each new cached type down
// to a few tables and one-line functions.

#include <redcoro/cache/error.hpp>

#include <boost/describe/enumerators.hpp>
#include <boost/describe/members.hpp>
#include <boost/describe/modifiers.hpp>

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <ratio>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

namespace redcoro::cache {

template <class T>
struct codec;

}  // namespace redcoro::cache

namespace redcoro::cache::detail {

// --- classification ---------------------------------------------------------------------

template <class T>
inline constexpr bool always_false = false;

template <class T>
inline constexpr bool is_char_v =
    std::is_same_v<T, char> || std::is_same_v<T, wchar_t> || std::is_same_v<T, char8_t> ||
    std::is_same_v<T, char16_t> || std::is_same_v<T, char32_t>;

// Plain `char` is left out on purpose: as a number or as a one-letter string, either reading
// would surprise someone. std::int8_t and std::uint8_t are (signed/unsigned) char and count.
template <class T>
inline constexpr bool is_integer_v =
    std::is_integral_v<T> && !std::is_same_v<T, bool> && !is_char_v<T>;

template <class T>
inline constexpr bool is_floating_v = std::is_same_v<T, float> || std::is_same_v<T, double>;

template <class T>
inline constexpr bool is_described_enum_v = [] {
  if constexpr (std::is_enum_v<T>)
    return boost::describe::has_describe_enumerators<T>::value;
  else
    return false;
}();

template <class T>
inline constexpr bool is_described_struct_v = [] {
  if constexpr (std::is_class_v<T>)
    return boost::describe::has_describe_members<T>::value;
  else
    return false;
}();

// A duration is supported when its ticks are a whole number of nanoseconds (everything from
// std::chrono::nanoseconds to years) and it counts them in an integer.
template <class T>
struct duration_info {
  static constexpr bool supported = false;
};

template <class Rep, class Period>
struct duration_info<std::chrono::duration<Rep, Period>> {
  using per_ns = std::ratio_divide<Period, std::nano>;
  static constexpr bool supported = is_integer_v<Rep> && per_ns::den == 1 && per_ns::num > 0;
  static constexpr std::int64_t period_ns = static_cast<std::int64_t>(per_ns::num);
  using rep = Rep;
};

template <class T>
struct sys_time_info {
  static constexpr bool supported = false;
};

template <class Duration>
struct sys_time_info<std::chrono::time_point<std::chrono::system_clock, Duration>>
    : duration_info<Duration> {};

template <class T>
inline constexpr bool is_duration_v = duration_info<T>::supported;

template <class T>
inline constexpr bool is_sys_time_v = sys_time_info<T>::supported;

/// Stored as plain text at the top level: readable with redis-cli, usable with INCR.
template <class T>
inline constexpr bool is_text_v =
    std::is_same_v<T, std::string> || std::is_same_v<T, bool> || is_integer_v<T> ||
    is_floating_v<T> || is_described_enum_v<T> || is_duration_v<T> || is_sys_time_v<T>;

template <class T>
struct optional_info : std::false_type {};
template <class T>
struct optional_info<std::optional<T>> : std::true_type {
  using element = T;
};

template <class T>
struct vector_info : std::false_type {};
template <class T, class A>
struct vector_info<std::vector<T, A>> : std::true_type {
  using element = T;
};

template <class T>
struct string_map_info : std::false_type {};
template <class T, class C, class A>
struct string_map_info<std::map<std::string, T, C, A>> : std::true_type {
  using element = T;
};
template <class T, class H, class E, class A>
struct string_map_info<std::unordered_map<std::string, T, H, E, A>> : std::true_type {
  using element = T;
};

template <class T>
inline constexpr bool is_json_v = false;

/// A member or element type: JSON-mapped if it can be, else a type with a user codec, whose
/// output then goes in a JSON string.
template <class T>
concept json_element = is_json_v<T> ||
    requires(const T& value, T& out, std::string& text, std::string_view in, codec_error& where) {
  { codec<T>::encode(value, text, where) } -> std::same_as<std::error_code>;
  { codec<T>::decode(in, out, where) } -> std::same_as<std::error_code>;
};

template <class T>
inline constexpr bool is_json_container_v = [] {
  if constexpr (optional_info<T>::value) {
    // optional<optional<T>> would store two empty states as one null.
    using E = typename optional_info<T>::element;
    return json_element<E> && !optional_info<E>::value;
  } else if constexpr (vector_info<T>::value) {
    return json_element<typename vector_info<T>::element>;
  } else if constexpr (string_map_info<T>::value) {
    return json_element<typename string_map_info<T>::element>;
  } else {
    return false;
  }
}();

// Structs are accepted on their description alone; their members are checked when their
// table is built, which gives a message naming the member type (and lets a struct hold a
// std::vector of itself).
template <class T>
requires(is_text_v<T> || is_json_container_v<T> ||
         is_described_struct_v<T>) inline constexpr bool is_json_v<T> = true;

// --- the description --------------------------------------------------------------------

enum class value_kind : std::uint8_t {
  string,
  boolean,
  integer,
  floating,
  enumeration,
  duration,
  time_point,
  optional,
  sequence,
  bool_sequence,
  map,
  object,
  custom,
};

struct type_desc;

struct field_desc {
  std::string_view name;      // the member's name, also its JSON key
  std::string_view json_key;  // `"name":`, appended in one go by the writer
  void* (*member)(void* object) noexcept;
  const type_desc* type;
};

struct enumerator_desc {
  std::string_view name;
  std::int64_t value;  // unsigned underlying types are stored modulo 2^64
};

struct optional_ops {
  bool (*has_value)(const void* opt) noexcept;
  const void* (*value)(const void* opt) noexcept;
  void* (*emplace)(void* opt);  // the contained value, default-constructed if there was none
  void (*reset)(void* opt) noexcept;
};

struct sequence_ops {
  std::size_t (*size)(const void* seq) noexcept;
  const void* (*at)(const void* seq, std::size_t i) noexcept;
  // Element i, appended when i == size: decoding reuses the elements (and their buffers) of
  // the vector it decodes into, then truncates.
  void* (*slot)(void* seq, std::size_t i);
  void (*truncate)(void* seq, std::size_t n);
  std::size_t (*capacity)(const void* seq) noexcept;
  void (*reserve)(void* seq, std::size_t n);
  std::size_t element_size;
};

struct bool_sequence_ops {
  std::size_t (*size)(const void* seq) noexcept;
  bool (*at)(const void* seq, std::size_t i) noexcept;
  void (*clear)(void* seq) noexcept;
  void (*push)(void* seq, bool v);
};

// Returns false to stop (an error, already described in the visitor's context).
using entry_visitor = bool (*)(void* context, std::string_view key, const void* value);

struct map_ops {
  std::size_t (*size)(const void* map) noexcept;
  bool (*for_each)(const void* map, entry_visitor visit, void* context);
  void (*clear)(void* map) noexcept;
  void* (*slot)(void* map, std::string_view key);  // the value under key, inserted if absent
};

struct custom_ops {
  std::error_code (*encode)(const void* value, std::string& out, codec_error& where);
  std::error_code (*decode)(std::string_view in, void* value, codec_error& where);
};

struct type_desc {
  value_kind kind;
  std::string_view name;       // for messages: "uint16", "double", "string", "object", ...
  std::uint8_t size = 0;       // integer, floating, enumeration, duration and time point reps
  bool is_signed = false;      // the same
  std::int64_t period_ns = 0;  // duration, time_point: nanoseconds per tick
  const type_desc* element = nullptr;  // optional, sequence, map
  const field_desc* fields = nullptr;  // object
  std::size_t field_count = 0;
  const enumerator_desc* enumerators = nullptr;  // enumeration
  std::size_t enumerator_count = 0;
  const optional_ops* optional = nullptr;
  const sequence_ops* sequence = nullptr;
  const bool_sequence_ops* bool_sequence = nullptr;
  const map_ops* map = nullptr;
  const custom_ops* custom = nullptr;
};

// --- the tables -------------------------------------------------------------------------

template <class T>
struct desc_of {
  static const type_desc value;
};

template <class T>
constexpr std::string_view integer_name() {
  constexpr bool s = std::is_signed_v<T>;
  switch (sizeof(T)) {
    case 1:
      return s ? "int8" : "uint8";
    case 2:
      return s ? "int16" : "uint16";
    case 4:
      return s ? "int32" : "uint32";
    default:
      return s ? "int64" : "uint64";
  }
}

template <class T>
struct optional_ops_of {
  using E = typename T::value_type;
  static constexpr optional_ops value{
      [](const void* o) noexcept { return static_cast<const T*>(o)->has_value(); },
      [](const void* o) noexcept -> const void* { return &**static_cast<const T*>(o); },
      [](void* o) -> void* {
        T& opt = *static_cast<T*>(o);
        if (!opt) opt.emplace();
        return &*opt;
      },
      [](void* o) noexcept { static_cast<T*>(o)->reset(); },
  };
};

template <class T>
struct sequence_ops_of {
  static constexpr sequence_ops value{
      [](const void* s) noexcept { return static_cast<const T*>(s)->size(); },
      [](const void* s, std::size_t i) noexcept -> const void* {
        return &(*static_cast<const T*>(s))[i];
      },
      [](void* s, std::size_t i) -> void* {
        T& v = *static_cast<T*>(s);
        if (i == v.size()) v.emplace_back();
        return &v[i];
      },
      [](void* s, std::size_t n) {
        T& v = *static_cast<T*>(s);
        // erase, not resize: resize would need the element to be copyable.
        v.erase(v.begin() + static_cast<std::ptrdiff_t>(n), v.end());
      },
      [](const void* s) noexcept { return static_cast<const T*>(s)->capacity(); },
      [](void* s, std::size_t n) { static_cast<T*>(s)->reserve(n); },
      sizeof(typename T::value_type),
  };
};

template <class T>
struct bool_sequence_ops_of {
  static constexpr bool_sequence_ops value{
      [](const void* s) noexcept { return static_cast<const T*>(s)->size(); },
      [](const void* s, std::size_t i) noexcept -> bool { return (*static_cast<const T*>(s))[i]; },
      [](void* s) noexcept { static_cast<T*>(s)->clear(); },
      [](void* s, bool v) { static_cast<T*>(s)->push_back(v); },
  };
};

template <class T>
struct map_ops_of {
  static constexpr map_ops value{
      [](const void* m) noexcept { return static_cast<const T*>(m)->size(); },
      [](const void* m, entry_visitor visit, void* context) {
        for (const auto& [k, v] : *static_cast<const T*>(m))
          if (!visit(context, k, &v)) return false;
        return true;
      },
      [](void* m) noexcept { static_cast<T*>(m)->clear(); },
      [](void* m, std::string_view key) -> void* {
        return &static_cast<T*>(m)->try_emplace(std::string(key)).first->second;
      },
  };
};

template <class T>
struct custom_ops_of {
  static constexpr custom_ops value{
      [](const void* v, std::string& out, codec_error& where) {
        return codec<T>::encode(*static_cast<const T*>(v), out, where);
      },
      [](std::string_view in, void* v, codec_error& where) {
        return codec<T>::decode(in, *static_cast<T*>(v), where);
      },
  };
};

template <class D>
struct quoted_key {
  static constexpr std::size_t length = std::char_traits<char>::length(D::name);
  static constexpr std::array<char, length + 3> chars = [] {
    std::array<char, length + 3> a{};
    a[0] = '"';
    for (std::size_t i = 0; i < length; ++i)
      a[i + 1] = D::name[i];
    a[length + 1] = '"';
    a[length + 2] = ':';
    return a;
  }();
  static constexpr std::string_view view{chars.data(), chars.size()};
};

template <class T, auto Member>
void* member_of(void* object) noexcept {
  return std::addressof(static_cast<T*>(object)->*Member);
}

template <class T, class D>
using member_type_t = std::remove_reference_t<decltype(std::declval<T&>().*D::pointer)>;

template <class T, class D>
constexpr field_desc make_field() {
  using M = member_type_t<T, D>;
  static_assert(!std::is_const_v<M>, "redcoro::cache: a const member cannot be decoded into");
  static_assert(json_element<M>,
                "redcoro::cache: this member's type has no JSON mapping. Supported: std::string, "
                "bool, integers, float, double, described enums, std::chrono durations and "
                "system_clock time points, std::optional, std::vector, std::map and "
                "std::unordered_map with std::string keys, BOOST_DESCRIBE_STRUCT types, and "
                "types with a redcoro::cache::codec specialization");
  return {D::name, quoted_key<D>::view, &member_of<T, D::pointer>, &desc_of<M>::value};
}

template <class T, class L>
struct field_table;

template <class T, template <class...> class L, class... D>
struct field_table<T, L<D...>> {
  static constexpr std::size_t count = sizeof...(D);
  // One dummy entry for a struct without members: arrays cannot be empty.
  static constexpr field_desc value[count ? count : 1] = {make_field<T, D>()...};
};

template <class E, class L>
struct enumerator_table;

template <class E, template <class...> class L, class... D>
struct enumerator_table<E, L<D...>> {
  static constexpr std::size_t count = sizeof...(D);
  static constexpr enumerator_desc value[count ? count : 1] = {
      enumerator_desc{D::name, static_cast<std::int64_t>(D::value)}...};
};

template <class T>
constexpr type_desc make_desc() {
  if constexpr (std::is_same_v<T, std::string>) {
    return {.kind = value_kind::string, .name = "string"};
  } else if constexpr (std::is_same_v<T, bool>) {
    return {.kind = value_kind::boolean, .name = "bool", .size = sizeof(bool)};
  } else if constexpr (is_integer_v<T>) {
    return {.kind = value_kind::integer,
            .name = integer_name<T>(),
            .size = sizeof(T),
            .is_signed = std::is_signed_v<T>};
  } else if constexpr (is_floating_v<T>) {
    return {.kind = value_kind::floating,
            .name = sizeof(T) == 4 ? "float" : "double",
            .size = sizeof(T)};
  } else if constexpr (is_described_enum_v<T>) {
    using U = std::underlying_type_t<T>;
    using table = enumerator_table<T, boost::describe::describe_enumerators<T>>;
    return {.kind = value_kind::enumeration,
            .name = "enum",
            .size = sizeof(U),
            .is_signed = std::is_signed_v<U>,
            .enumerators = table::value,
            .enumerator_count = table::count};
  } else if constexpr (is_duration_v<T>) {
    using info = duration_info<T>;
    return {.kind = value_kind::duration,
            .name = "duration",
            .size = sizeof(typename info::rep),
            .is_signed = std::is_signed_v<typename info::rep>,
            .period_ns = info::period_ns};
  } else if constexpr (is_sys_time_v<T>) {
    using info = sys_time_info<T>;
    return {.kind = value_kind::time_point,
            .name = "time point",
            .size = sizeof(typename info::rep),
            .is_signed = std::is_signed_v<typename info::rep>,
            .period_ns = info::period_ns};
  } else if constexpr (is_json_container_v<T> && optional_info<T>::value) {
    return {.kind = value_kind::optional,
            .name = "optional",
            .element = &desc_of<typename optional_info<T>::element>::value,
            .optional = &optional_ops_of<T>::value};
  } else if constexpr (is_json_container_v<T> && vector_info<T>::value) {
    using E = typename vector_info<T>::element;
    if constexpr (std::is_same_v<E, bool>)
      return {.kind = value_kind::bool_sequence,
              .name = "array",
              .element = &desc_of<bool>::value,
              .bool_sequence = &bool_sequence_ops_of<T>::value};
    else
      return {.kind = value_kind::sequence,
              .name = "array",
              .element = &desc_of<E>::value,
              .sequence = &sequence_ops_of<T>::value};
  } else if constexpr (is_json_container_v<T> && string_map_info<T>::value) {
    return {.kind = value_kind::map,
            .name = "object",
            .element = &desc_of<typename string_map_info<T>::element>::value,
            .map = &map_ops_of<T>::value};
  } else if constexpr (is_described_struct_v<T>) {
    // Every described member, inherited ones included: describing a private member is a
    // request to store it.
    using table =
        field_table<T, boost::describe::describe_members<T, boost::describe::mod_any_access |
                                                                boost::describe::mod_inherited>>;
    return {.kind = value_kind::object,
            .name = "object",
            .fields = table::value,
            .field_count = table::count};
  } else if constexpr (json_element<T>) {
    return {.kind = value_kind::custom, .name = "string", .custom = &custom_ops_of<T>::value};
  } else {
    static_assert(always_false<T>, "redcoro::cache: no JSON mapping for this type");
    return {.kind = value_kind::string};
  }
}

template <class T>
constinit const type_desc desc_of<T>::value = make_desc<T>();

// --- the compiled core --------------------------------------------------------------------
// Each fails with `where` filled in (its path relative to `value`), and leaves `out` possibly
// holding part of a value: the public functions in codec.hpp put it back.

std::error_code encode_json(const type_desc& type, const void* value, std::string& out,
                            codec_error& where);
std::error_code decode_json(const type_desc& type, std::string_view in, void* value,
                            codec_error& where);
std::error_code encode_text(const type_desc& type, const void* value, std::string& out,
                            codec_error& where);
std::error_code decode_text(const type_desc& type, std::string_view in, void* value,
                            codec_error& where);

}  // namespace redcoro::cache::detail
