#include <redcoro/client/commands.hpp>
#include <redcoro/proto/error.hpp>

#include <cctype>

namespace redcoro {

namespace {

std::string_view next_line(std::string_view& text) {
  const auto end = text.find('\n');
  std::string_view line = text.substr(0, end);
  text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return line;
}

}  // namespace

void redcoro_from_bulk(server_info& out, std::string_view text, std::error_code& ec) {
  out.sections.clear();
  auto* section = &out.sections[""];
  while (!text.empty()) {
    const std::string_view line = next_line(text);
    if (line.empty()) continue;
    if (line.front() == '#') {
      std::string name(line.substr(line.find_first_not_of("# ")));
      for (char& c : name)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      section = &out.sections[name];
      continue;
    }
    const auto colon = line.find(':');
    if (colon == std::string_view::npos) {
      ec = proto::error::type_mismatch;
      return;
    }
    section->insert_or_assign(std::string(line.substr(0, colon)),
                              std::string(line.substr(colon + 1)));
  }
  if (out.sections[""].empty()) out.sections.erase("");
}

std::optional<std::string_view> server_info::get(std::string_view section,
                                                 std::string_view field) const {
  const auto s = sections.find(section);
  if (s == sections.end()) return std::nullopt;
  const auto f = s->second.find(field);
  if (f == s->second.end()) return std::nullopt;
  return std::string_view(f->second);
}

}  // namespace redcoro

namespace redcoro::cmd {

void arg::write(proto::arg_sink& sink) const {
  switch (kind_) {
    case kind::text:
      sink.add_bulk(text_);
      return;
    case kind::signed_number:
      sink.add_signed(signed_);
      return;
    case kind::unsigned_number:
      sink.add_unsigned(unsigned_);
      return;
    case kind::floating:
      sink.add_double(floating_);
      return;
  }
}

}  // namespace redcoro::cmd
