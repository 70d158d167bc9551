"""The review queue: label pairs with the keyboard."""

from review_app.labeling import render_queue

render_queue("review")
