#!/usr/bin/python3
"""Checks of the manual pages built from docs/man/.

  check_manpages.py render MAN_DIR
      Every page renders with `groff -man -ww -z` (all warnings on) with
      nothing on stderr, and there is a page per program and per config.

  check_manpages.py keys MAN_DIR CONFIG_DIR NAME=PROGRAM...
      Every configuration key each program accepts is documented in its
      section-5 page. The keys come from the program itself: with
      MAILPOLICY_LIST_CONFIG_KEYS=1 its configuration reader prints every key
      it looks up ("config key: rules[0].limit"), and --check-config reads
      the whole configuration. It runs with the example configuration of
      CONFIG_DIR (so nested keys such as a rule's are read too) and with an
      empty one. A key counts as documented when the page shows it in bold
      (roff \\fBkey\\fR), as the OPTIONS and RULES sections do. The other
      way round, every key the page describes (the bold words of a definition
      term, before its type in parentheses) must be one the program accepts,
      so a page cannot keep a key the program no longer reads.
"""

import json
import os
import re
import subprocess
import sys
import tempfile


def render(man_dir):
    pages = sorted(p for p in os.listdir(man_dir) if re.search(r'\.[1-8]$', p))
    if not pages:
        print('FAIL: no pages in %s' % man_dir)
        return 1
    bad = 0
    for page in pages:
        r = subprocess.run(['groff', '-man', '-ww', '-z', os.path.join(man_dir, page)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if r.returncode != 0 or r.stderr:
            print('FAIL %s: groff exit %d\n%s' % (page, r.returncode, r.stderr))
            bad += 1
        else:
            print('ok   %s' % page)
    expected = [p + s for p in ('policyd-greylist', 'policyd-ratelimit', 'policyd-spf', 'delivery-maildir')
                for s in ('.8', '.json.5')] + ['mta-core.8']
    for page in expected:
        if page not in pages:
            print('FAIL: no page %s' % page)
            bad += 1
    return 1 if bad else 0


def keys_of(program, config, tmp):
    path = os.path.join(tmp, 'config.json')
    with open(path, 'w') as f:
        json.dump(config, f)
    env = dict(os.environ, MAILPOLICY_LIST_CONFIG_KEYS='1')
    r = subprocess.run([program, '--config', path, '--check-config'], env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        raise RuntimeError('%s --check-config failed (%d): %s' % (program, r.returncode, r.stderr))
    found = set()
    for line in r.stderr.splitlines():
        if line.startswith('config key: '):
            # rules[0].limit -> limit: a nested key is documented by its own name
            found.add(re.sub(r'^.*\.', '', line[len('config key: '):]))
    return found


def example_config(config_dir, name, tmp):
    with open(os.path.join(config_dir, name + '.json')) as f:
        config = json.load(f)
    # Paths of this host in the examples, pointed into the temp dir so that
    # --check-config can read them.
    if 'virtual_mailboxes' in config:
        list_path = os.path.join(tmp, 'vmailbox')
        with open(os.path.join(config_dir, 'vmailbox')) as src, open(list_path, 'w') as dst:
            dst.write(src.read())
        config['virtual_mailboxes'] = list_path
    if 'virtual_base' in config:
        config['virtual_base'] = tmp
    return config


def keys(man_dir, config_dir, programs):
    bad = 0
    for spec in programs:
        name, program = spec.split('=', 1)
        with tempfile.TemporaryDirectory() as tmp:
            accepted = keys_of(program, example_config(config_dir, name, tmp), tmp)
            accepted |= keys_of(program, {}, tmp)
        with open(os.path.join(man_dir, name + '.json.5')) as f:
            page = f.read()
        # A page that lists fewer keys than the common ones is not a test.
        if len(accepted) < 10:
            print('FAIL %s: only %d keys reported; is the key listing broken?' % (name, len(accepted)))
            bad += 1
            continue
        missing = sorted(k for k in accepted if '\\fB%s\\fR' % k not in page)
        # A term of a definition list is the line before ".RS 4"; its keys are
        # the bold words before the type in parentheses.
        lines = page.split('\n')
        described = set()
        for term, following in zip(lines, lines[1:]):
            if following == '.RS 4' and term.startswith('\\fB'):
                described |= set(re.findall(r'\\fB([a-z0-9_]+)\\fR', term.split('(')[0]))
        stale = sorted(described - accepted)
        if missing:
            print('FAIL %s.json(5) does not document: %s' % (name, ', '.join(missing)))
            bad += 1
        if stale:
            print('FAIL %s.json(5) describes keys the program does not accept: %s' % (name, ', '.join(stale)))
            bad += 1
        if not missing and not stale:
            print('ok   %s.json(5) documents all %d keys: %s' % (name, len(accepted), ' '.join(sorted(accepted))))
    return 1 if bad else 0


def main():
    if len(sys.argv) >= 3 and sys.argv[1] == 'render':
        return render(sys.argv[2])
    if len(sys.argv) >= 5 and sys.argv[1] == 'keys':
        return keys(sys.argv[2], sys.argv[3], sys.argv[4:])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == '__main__':
    sys.exit(main())
