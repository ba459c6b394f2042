"""The HTML reports of the validate and evaluate steps, and their inline SVG charts."""
