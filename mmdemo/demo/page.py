"""The page's own CSS and scripts (app.py passes them to gradio)."""

from __future__ import annotations

CSS = """
#image img, #overlay img, #compare-image img { image-rendering: pixelated; }
#image img, #compare-image img { height: 100%; width: auto; max-width: 100%; object-fit: contain; border: 1px solid #999; box-sizing: border-box; }
#overlay img { border: 1px solid #999; box-sizing: border-box; }
#compare-gallery img, #faith-tiles img { image-rendering: pixelated; }
#compare-gallery .grid-wrap { max-height: none !important; height: auto !important; overflow-y: visible !important; }
#compare-table th, #compare-table th *, #model-card th, #paper-table th { word-break: normal !important; overflow-wrap: normal !important; hyphens: manual !important; }
#faith-table th, #faith-table th *, #faith-table td { word-break: normal !important; overflow-wrap: normal !important; hyphens: manual !important; }
#faith-table code { overflow-wrap: anywhere; }
#model-card table, #paper-table table, #faith-table table { display: block; overflow-x: auto; }  /* wide tables scroll sideways, never break words */
.out-of-domain { border-left: 4px solid #c2410c; background: #fff7ed; color: #431407; padding: 8px 12px; font-size: 1.05em; }
.anyway { color: #888; }
.gradio-container:has(#answer .out-of-domain) #probs { opacity: 0.4; }  /* out of domain: no confident headline */
@media (max-width: 700px) {  /* a phone: the step maps keep readable cells and scroll sideways */
  #heatmap, #photo-heatmap { overflow-x: auto; }
  #heatmap .js-plotly-plot, #photo-heatmap .js-plotly-plot { min-width: 760px; }
}
.gradio-container:has(#answer .out-of-domain) #probs::before { content: "What it would say anyway (means nothing here)"; padding: 4px 8px; }
"""
# On a phone the results column sits below the inputs: after an answer, bring it (and the overlay) into view.
SHOW_ANSWER_JS = """() => { const a = document.getElementById('answer');
  if (a && window.innerWidth < 700) window.scrollTo({top: a.getBoundingClientRect().top + window.scrollY - 8}); }"""
SHOW_PHOTO_ANSWER_JS = SHOW_ANSWER_JS.replace("'answer'", "'photo-answer'")
