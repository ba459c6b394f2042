"""A bare WSGI handler returning a constant: the ceiling of the serving stack.

Bare WSGI rather than Flask: the ceiling measures what nginx + gunicorn can carry on this machine,
and the project's choice of Flask is part of what the ratio should show, not hide. It reads the
request body like the real app, so 100-row requests move the same bytes through the stack.
"""

ANSWER = b"0,0.5\n"
HEADERS = [("Content-Type", "text/csv"), ("Content-Length", str(len(ANSWER)))]


def app(environ, start_response):
    if environ["REQUEST_METHOD"] == "POST":
        environ["wsgi.input"].read()
    start_response("200 OK", HEADERS)
    return [ANSWER]
