// The report as one self-contained HTML page: inline CSS, charts drawn here as
// inline SVG, no fetch of any kind, and one inline script that only marks the
// page rendered (data-rendered on <html>: the number of charts) for tests.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace tailor::report {

// report is BuildReport's JSON; extra_sections is HTML appended before the
// footer (e.g. the fairness section), trusted as is.
std::string RenderHtml(const nlohmann::json& report, const std::string& extra_sections = "");

// The shadow-mode section: experiments::ShadowSummary's JSON as a table.
std::string ShadowHtml(const nlohmann::json& estimate);

// Text with &, <, >, " and ' escaped for HTML text and attribute values.
std::string HtmlEscape(std::string_view text);

}  // namespace tailor::report
