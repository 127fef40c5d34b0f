"""``rlaif report``: one self-contained HTML file (plots embedded as PNG) about a run's three stages.

- ``collect``: reads each stage's summary, metrics and samples from its output URI (rlaif_jobs.io, so a
  local folder, a PVC path or s3:// work alike);
- ``plots``: matplotlib figures as base64 PNGs;
- ``paper``: the paper's headline figures, with model sizes, to set beside this run's;
- ``html``: the page; ``table``: the console table of evaluation figures.
"""

from rlaif_jobs.runreport.collect import Run, from_outputs, from_workdir
from rlaif_jobs.runreport.html import write_report
from rlaif_jobs.runreport.table import evaluation_table

__all__ = ["Run", "evaluation_table", "from_outputs", "from_workdir", "write_report"]
