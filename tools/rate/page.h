// The 2AFC page `iris rate serve` hands to raters: one self-contained HTML document (style and script
// inline, nothing loaded from elsewhere).
//
// A rater opens http://HOST:PORT/ (plus ?token=... for a study with a token, and optionally &rater=NAME),
// gives a name or rater token, and then for each trial sees the truth and one method's output side by side
// (sides and order from the plan, study.h) for the viewing time or until answering, after which the pair
// is hidden and the question stays; ← / → (or the buttons) answer. A progress count is shown throughout.
// The page's state is exposed on <body> for tests and tools: data-state (start, loading, viewing,
// question, done, error), data-trial and data-answered.
#pragma once

namespace iris::rate {

const char* rate_page_html();

}  // namespace iris::rate
