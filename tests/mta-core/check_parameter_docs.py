#!/usr/bin/python3
"""docs/mta-core.md documents every parameter mta-core knows, under the kind
the program gives it. Usage: check_parameter_docs.py MTA_CORE DOC CONFIG_DIR

The parameters come from the program (`--print-defaults`, run with a
throwaway configuration), not from a list written here: a parameter added to
the table and not to the page, or moved between supported, refused and
ignored, fails this check."""
import os, re, subprocess, sys, tempfile

program, doc_path, _ = sys.argv[1:4]
with tempfile.TemporaryDirectory() as tmp:
    os.chmod(tmp, 0o755)
    open(os.path.join(tmp, 'main.cf'), 'w').write(
        'queue_directory = %s/queue\nmail_owner = nobody\nalias_maps =\nmydestination =\n' % tmp)
    open(os.path.join(tmp, 'master.cf'), 'w').write('127.0.0.1:2525 inet n - n - - smtpd\n')
    r = subprocess.run([program, '--config', os.path.join(tmp, 'main.cf'), '--print-defaults'],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
if r.returncode != 0:
    print('FAIL: --print-defaults exited %d: %s' % (r.returncode, r.stderr))
    sys.exit(1)
kinds = {}
for line in r.stdout.splitlines():
    if line.startswith('# '):
        name, rest = line[2:].split(': ', 1)
        kinds[name] = 'ignored' if rest.startswith('ignored') else 'unsupported'
    else:
        kinds[line.split(' = ')[0].strip()] = 'supported'
doc = open(doc_path).read()
sections = {'supported': '### Supported', 'unsupported': '### Known to Postfix, not done', 'ignored': '### Accepted and ignored'}
found = {}
current = None
for line in doc.splitlines():
    for kind, head in sections.items():
        if line.startswith(head):
            current = kind
    m = re.match(r'\| `([A-Za-z0-9_]+)` \|', line)
    if m and current:
        found[m.group(1)] = current
bad = 0
for name, kind in sorted(kinds.items()):
    if name not in found:
        print('FAIL: %s (%s) is not in %s' % (name, kind, doc_path)); bad += 1
    elif found[name] != kind:
        print('FAIL: %s is %s, the page says %s' % (name, kind, found[name])); bad += 1
for name in sorted(set(found) - set(kinds)):
    print('FAIL: the page lists %s, which mta-core does not know' % name); bad += 1
print('%d parameters checked, %d problems' % (len(kinds), bad))
sys.exit(1 if bad else 0)
