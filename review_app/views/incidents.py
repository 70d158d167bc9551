"""The incident queue: both-bad and safety-flagged pairs."""

from review_app.labeling import render_queue

render_queue("incident")
