"""What drives the steps from outside: the shared suite, the browser tests, the checker, the docs and the bench.

- `harness.steps`: find the steps, read their step.toml, load a step (or a
  learner's app) and call its factory.
- `harness.services`: throwaway PostgreSQL and Redis servers on free
  loopback ports, and the small tools to start and stop processes.
- `harness.smtp`: a real SMTP server (aiosmtpd) whose inbox a test reads.
- `harness.served`: a step served by `flask run` or gunicorn in a process
  of its own, and a browser with a cookie jar for it.
- `harness.apps`: a step's app driven in this process: test client, CLI,
  database and session helpers.
- `harness.accounts`: alice and bob, and how a step gets them.
- `harness.pages`: read what a page shows, as a browser would.
- `harness.two_factor`: turn two-factor on (step 10+), read the secret and
  the recovery codes, and make codes as an authenticator app does.
- `harness.checker`: the checker (`pytest --app-path`), which puts a
  learner's app in the steps' place and reports line by line.

The noxfile installs it (editable) into every virtualenv that needs it.
`harness.steps` and `harness.services` use only the standard library:
nox imports them before any virtualenv exists.
"""
