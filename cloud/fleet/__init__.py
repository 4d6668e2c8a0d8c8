"""Fleet: edge device enrolment, signed sync (push/pull), remote commands, fleet view."""
