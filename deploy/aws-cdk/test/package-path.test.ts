// scripts/package-lambda.sh, the app's default package path and its error message must name the
// same file (issue 20: the script wrote build/lambda/ while the app and the docs looked in
// build/lambda-package/). The script is run for real, in a copy of the repository's layout, with
// a stand-in binary (DS_LAMBDA_BINARY=/bin/true), so no C++ build is needed.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { APP_DIR, DEFAULT_LAMBDA_ZIP, readSettings } from '../lib/settings';
import { cleanup, tempDir } from './helpers';

const REPO = path.resolve(APP_DIR, '..', '..');
const SCRIPT = path.join(REPO, 'scripts', 'package-lambda.sh');
const ZIP_NAME = 'delete-sync-lambda-x86_64.zip';

afterAll(cleanup);

// The app's default, relative to the repository root: build/lambda-package/delete-sync-lambda-x86_64.zip.
const appDefault = path.relative(REPO, path.resolve(APP_DIR, DEFAULT_LAMBDA_ZIP));

test('the script writes by default where the app looks', () => {
  const text = fs.readFileSync(SCRIPT, 'utf8');
  const m = /^OUT_DIR="\$\{1:-\$ROOT\/([^}]+)\}"$/m.exec(text);
  expect(m).not.toBeNull();
  expect(path.join(m![1], ZIP_NAME)).toBe(appDefault);
  expect(appDefault).toBe(path.join('build', 'lambda-package', ZIP_NAME));
});

test('the message without a package names the script and the path it writes', () => {
  expect(() => readSettings((k) => (k === 'lambdaZip' ? '/nonexistent/x.zip' : undefined))).toThrow(
    `build it with \`scripts/package-lambda.sh\` from the repository root (it writes ${appDefault})`,
  );
});

// The tools the script checks for; on a machine without them (or not x86_64) the run is skipped.
const tools = ['cmake', 'zip', 'ldd', 'strip'];
const canRun =
  process.arch === 'x64' &&
  process.platform === 'linux' &&
  tools.every((t) => spawnSync('sh', ['-c', `command -v ${t}`]).status === 0);

(canRun ? test : test.skip)('running the script produces the zip the app accepts by default', () => {
  // A copy of the layout: ROOT/scripts/package-lambda.sh; ROOT/deploy/aws-cdk is where the app's
  // relative default is resolved from.
  const root = tempDir('repo');
  fs.mkdirSync(path.join(root, 'scripts'));
  fs.mkdirSync(path.join(root, 'deploy', 'aws-cdk'), { recursive: true });
  fs.copyFileSync(SCRIPT, path.join(root, 'scripts', 'package-lambda.sh'));
  fs.chmodSync(path.join(root, 'scripts', 'package-lambda.sh'), 0o755);
  const r = spawnSync(path.join(root, 'scripts', 'package-lambda.sh'), [], {
    encoding: 'utf8',
    env: { ...process.env, DS_LAMBDA_BINARY: '/bin/true' },
  });
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  const expected = path.resolve(root, 'deploy', 'aws-cdk', DEFAULT_LAMBDA_ZIP);
  expect(r.stdout).toContain(`package-lambda: wrote ${expected} `);
  expect(fs.existsSync(expected)).toBe(true);
  // And the app takes it: a zip with bootstrap at its root.
  const settings = readSettings((k) => (k === 'lambdaZip' ? expected : undefined));
  expect(settings.lambdaCode).toBe(expected);
});
