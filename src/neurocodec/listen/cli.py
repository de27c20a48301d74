"""``neurocodec listen prepare|serve|results``."""

from __future__ import annotations

import shlex
import sys


def add_listen_parser(sub) -> None:
    p = sub.add_parser("listen", help="MUSHRA listening tests (ITU-R BS.1534-3) in the browser")
    cmds = p.add_subparsers(dest="listen_command", metavar="STEP", parser_class=type(p), required=True)

    a = cmds.add_parser("prepare", help="code the items with every condition and write a test folder")
    a.add_argument("--codecs", required=True, help="codec:kbps list, e.g. mdct:16,opus:16,cq:16")
    a.add_argument("--items", required=True, help="audio file, folder of audio files, or corpus manifest")
    a.add_argument("--out", required=True, help="test folder to create (must not exist or be empty)")
    a.add_argument("--split", default="test", help="manifest split (default: test)")
    a.add_argument("--sources", default=None, help="manifest sources to keep, e.g. speech-real,music-real")
    a.add_argument("--limit", type=int, default=None, help="use only the first N items")
    a.add_argument("--group-by", default="auto", choices=["auto", "source", "folder", "item", "none"],
                   help="panels of the results figure (default: manifest source, else first folder)")
    a.add_argument("--max-seconds", type=float, default=10.0, help="cut items to this length (0: whole; default 10)")
    a.add_argument("--raters", type=int, default=24, help="rater links to create (default 24)")
    a.add_argument("--seed", type=int, default=0, help="seed of the randomized, balanced orders")
    a.add_argument("--title", default="Listening test")
    a.add_argument("--no-align", action="store_true", help="keep the codecs' delay (default: removed)")
    a.add_argument("-q", "--quiet", action="store_true")
    a.set_defaults(func=run_prepare)

    s = cmds.add_parser("serve", help="serve a prepared test (rater links and admin link are printed)")
    s.add_argument("test_dir")
    s.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    s.add_argument("--port", type=int, default=8000)
    s.add_argument("--base-url", default=None, help="URL the raters reach (e.g. behind a TLS proxy); default http://HOST:PORT")
    s.add_argument("--log", action="store_true", help="uvicorn access log (paths only: tokens are never in a URL path)")
    s.set_defaults(func=run_serve)

    r = cmds.add_parser("results", help="post-screening, means with 95%% intervals, figure and CSV")
    r.add_argument("test_dir")
    r.add_argument("--out", default=None, help="output folder (default TEST_DIR/results)")
    r.add_argument("--figure", default=None, help="where to write the figure (default OUT/results.png)")
    r.add_argument("--no-screening", action="store_true", help="keep every rater")
    r.add_argument("--anchor-screening", action="store_true",
                   help="also exclude raters who score the 7 kHz anchor above 90 in more than 15%% of trials")
    r.set_defaults(func=run_results)


def run_prepare(args) -> int:
    from ..errors import UserError
    from .prepare import find_items, parse_conditions, prepare_test

    if args.raters < 1:
        raise UserError("--raters must be >= 1")
    codecs = parse_conditions(args.codecs)
    sources = [s for s in args.sources.split(",") if s.strip()] if args.sources else None
    items = find_items(args.items, split=args.split, sources=sources, group_by=args.group_by)
    if args.limit:
        items = items[: args.limit]
    say = None if args.quiet else (lambda m: print(f"  {m}", file=sys.stderr))
    plan = prepare_test(items, codecs, args.out, raters=args.raters, seed=args.seed, max_seconds=args.max_seconds,
                        title=args.title, align=not args.no_align,
                        command="neurocodec " + " ".join(shlex.quote(a) for a in sys.argv[1:]), progress=say)
    if not args.quiet:
        print(f"{args.out}: {len(plan.items)} items x {len(plan.conditions)} conditions "
              f"({', '.join(c.id for c in plan.conditions)}), {len(plan.raters)} raters; "
              f"serve it with 'neurocodec listen serve {args.out}'", file=sys.stderr)
    return 0


def run_serve(args) -> int:
    from ..errors import UserError
    from .plan import Plan
    from .prepare import load_secrets

    try:
        import uvicorn

        from .server.app import create_app
        from .server.runner import bind, config
    except ImportError as e:
        raise UserError(f"the web app needs {e.name}: pip install 'neurocodec[listen]'") from None

    Plan.load(args.test_dir)  # a clear error before anything binds
    app = create_app(args.test_dir)
    try:
        sock = bind(args.host, args.port)
    except OSError as e:
        raise UserError(f"cannot listen on {args.host}:{args.port}: {e.strerror}") from None
    base = (args.base_url or f"http://{args.host if ':' not in args.host else '[' + args.host + ']'}:{sock.getsockname()[1]}").rstrip("/")
    sec = load_secrets(args.test_dir)
    print(f"admin   {base}/admin#{sec['admin']}")
    for rater, token in sec["raters"].items():
        print(f"{rater:<7} {base}/#{token}")
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: listening on {args.host} over plain HTTP; put a TLS proxy in front for remote raters",
              file=sys.stderr)
    sys.stdout.flush()
    server = uvicorn.Server(config(app, log_level="info" if args.log else "warning", access_log=args.log))
    server.run(sockets=[sock])
    return 0


def run_results(args) -> int:
    from .results import analyse

    res = analyse(args.test_dir, out=args.out, figure_path=args.figure, screen=not args.no_screening,
                  anchor_screening=args.anchor_screening)
    print(res.table, end="")
    print(f"results: {res.csv}  {res.figure}", file=sys.stderr)
    return 0
