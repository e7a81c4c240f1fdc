/**
 * Models by Hugging Face repo id, against a hub on loopback (test/helpers/fake-hub.ts) that serves
 * ../shared/models in the hub's URL layout: loading and generating through HF_ENDPOINT, the cache layout Python's
 * huggingface_hub shares, offline loads that make no request, gated repos, missing files, redirects, and downloads
 * cut off mid-body that leave no corrupt blob and resume on the next load.
 */
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { HfCache, hubCacheDir, hubOffline, hubToken } from '../bindings/node/hf-cache.js';
import { ModelFileError, SamplingParams } from '../bindings/node/index.js';
import type { DownloadProgress } from '../src/platform.js';
import { HubModelSource, isRepoId } from '../src/sources/hub-source.js';
import { readCheckpoint } from '../src/loader/safetensors.js';
import { fakeCommit, FakeHub } from './helpers/fake-hub.js';
import { loadLLM } from './helpers/llm.js';
import { loadGoldens, modelDir } from './helpers/paths.js';

const REPO = 'test-org/stories260K';
const GATED = 'gated-org/stories260K';
const TOKEN = 'hf_test_token';
const COMMIT = fakeCommit(REPO);
const FILES = ['config.json', 'generation_config.json', 'model.safetensors', 'special_tokens_map.json', 'tokenizer.json', 'tokenizer_config.json'];

let hub: FakeHub;
let home: string;
const savedEnv = { ...process.env };

beforeAll(async () => {
  hub = await FakeHub.start({
    repos: { [REPO]: modelDir('stories260K'), [GATED]: modelDir('stories260K'), 'test-org/tiny-random-llama2': modelDir('tiny-random-llama2') },
    gated: [GATED],
    token: TOKEN,
    renamed: { 'old-org/stories260K': REPO },
  });
});
afterAll(() => hub.close());

beforeEach(() => {
  home = mkdtempSync(join(tmpdir(), 'hf-home-'));
  for (const k of ['HF_HOME', 'HF_HUB_CACHE', 'HF_TOKEN', 'HF_TOKEN_PATH', 'HF_HUB_OFFLINE', 'HF_ENDPOINT']) delete process.env[k];
  process.env.HF_HOME = home;
  process.env.HF_ENDPOINT = hub.url;
  hub.requests.length = 0;
  hub.breakNext = null;
  hub.ignoreRange = false;
});
afterEach(() => {
  process.env = { ...savedEnv };
  rmSync(home, { recursive: true, force: true });
});

const repoDir = () => join(home, 'hub', 'models--test-org--stories260K');
const greedy = (maxTokens = 16) => new SamplingParams({ temperature: 0, maxTokens });
const golden = () => loadGoldens()['stories260K'].prompts[0];

describe('LLM.create with a repo id', () => {
  it('downloads through HF_ENDPOINT into $HF_HOME/hub in the Hugging Face layout, and generates', async () => {
    const events: DownloadProgress[] = [];
    const llm = await loadLLM(REPO, { onProgress: (p) => events.push(p) });
    try {
      const g = golden();
      const [out] = await llm.generate(g.text, greedy(g.greedy_ids.length));
      expect(out.outputs[0].tokenIds).toEqual(g.greedy_ids);
    } finally {
      await llm.dispose();
    }
    // refs/main -> commit; snapshots/{commit}/{file} -> ../../blobs/{etag}, blobs named by git sha1 / sha256.
    expect(readFileSync(join(repoDir(), 'refs', 'main'), 'utf8')).toBe(COMMIT);
    for (const file of FILES) {
      const link = join(repoDir(), 'snapshots', COMMIT, file);
      expect(lstatSync(link).isSymbolicLink(), file).toBe(true);
      const target = readlinkSync(link);
      expect(target).toMatch(/^\.\.\/\.\.\/blobs\/[0-9a-f]{40,64}$/);
      const bytes = readFileSync(join(modelDir('stories260K'), file));
      const etag = file.endsWith('.safetensors')
        ? createHash('sha256').update(bytes).digest('hex')
        : createHash('sha1').update(`blob ${bytes.length}\0`).update(bytes).digest('hex');
      expect(target, file).toBe(`../../blobs/${etag}`);
      expect(readFileSync(link).equals(bytes), file).toBe(true);
    }
    expect(readdirSync(join(repoDir(), 'blobs')).filter((f) => f.endsWith('.incomplete'))).toEqual([]);
    // The weights came from the CDN redirect, with progress from 0 to the full size.
    const st = events.filter((e) => e.file === 'model.safetensors' && e.phase !== 'upload');
    // Then the upload to the GPU reports its own progress.
    expect(events.filter((e) => e.phase === 'upload').at(-1)).toMatchObject({ phase: 'upload', file: 'model.safetensors' });
    const size = lstatSync(join(modelDir('stories260K'), 'model.safetensors')).size;
    expect(st[0]).toEqual({ file: 'model.safetensors', loadedBytes: 0, totalBytes: size });
    expect(st.at(-1)).toEqual({ file: 'model.safetensors', loadedBytes: size, totalBytes: size });
    expect(st.every((e, i) => i === 0 || e.loadedBytes >= st[i - 1].loadedBytes)).toBe(true);
    expect(hub.requests.some((r) => r.path.startsWith('/cdn-lfs/'))).toBe(true);

    // A second create with HF_HUB_OFFLINE=1 loads from the cache and makes no request at all.
    hub.requests.length = 0;
    process.env.HF_HUB_OFFLINE = '1';
    const again = await loadLLM(REPO);
    try {
      const g = golden();
      const [out] = await again.generate(g.text, greedy(g.greedy_ids.length));
      expect(out.outputs[0].tokenIds).toEqual(g.greedy_ids);
    } finally {
      await again.dispose();
    }
    expect(hub.requests).toEqual([]);
  });

  it('fails offline with an empty cache, naming the missing file and making no request', async () => {
    await expect(loadLLM(REPO, { offline: true })).rejects.toThrow(/test-org\/stories260K\/config\.json: offline mode/);
    expect(hub.requests).toEqual([]);
  });

  it('leaves no corrupt blob when the download is cut off mid-body, and the next load resumes it', async () => {
    hub.breakNext = { match: '/cdn-lfs/', afterBytes: 300_000 };
    const err = await loadLLM(REPO).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModelFileError);
    expect((err as Error).message).toMatch(/model\.safetensors: the download broke off after \d+ of \d+ bytes/);
    const sha = hub.sha256(REPO, 'model.safetensors');
    const blobs = join(repoDir(), 'blobs');
    expect(existsSync(join(blobs, sha))).toBe(false);
    expect(existsSync(join(blobs, `${sha}.incomplete`))).toBe(true);
    expect(existsSync(join(repoDir(), 'snapshots', COMMIT, 'model.safetensors'))).toBe(false);

    hub.requests.length = 0;
    const llm = await loadLLM(REPO);
    try {
      const g = golden();
      const [out] = await llm.generate(g.text, greedy(g.greedy_ids.length));
      expect(out.outputs[0].tokenIds).toEqual(g.greedy_ids);
    } finally {
      await llm.dispose();
    }
    const resumed = hub.requests.find((r) => r.path.startsWith('/cdn-lfs/') && r.method === 'GET');
    expect(resumed?.range).toMatch(/^bytes=[1-9]\d*-$/); // only the missing tail was fetched
    expect(createHash('sha256').update(readFileSync(join(blobs, sha))).digest('hex')).toBe(sha);
    expect(existsSync(join(blobs, `${sha}.incomplete`))).toBe(false);
  });
});

describe('HubModelSource with the Hugging Face cache', () => {
  const source = (opts: ConstructorParameters<typeof HubModelSource>[1] = {}, repo = REPO) =>
    new HubModelSource(repo, { endpoint: hub.url, cache: new HfCache(hubCacheDir()), ...opts });

  it('records missing files under .no_exist, so an offline load knows them without a request', async () => {
    const repo = 'test-org/tiny-random-llama2'; // has no generation_config.json
    const src = source({}, repo);
    await expect(src.exists('generation_config.json')).resolves.toBe(false);
    await expect(src.readText('generation_config.json')).rejects.toThrow(/generation_config\.json: not found in the repository/);
    expect(JSON.parse(await src.readText('config.json')).model_type).toBe('llama');
    const dir = join(home, 'hub', 'models--test-org--tiny-random-llama2');
    expect(existsSync(join(dir, '.no_exist', fakeCommit(repo), 'generation_config.json'))).toBe(true);

    hub.requests.length = 0;
    const offline = source({ offline: true }, repo);
    await expect(offline.exists('generation_config.json')).resolves.toBe(false);
    await expect(offline.exists('config.json')).resolves.toBe(true);
    // Not known either way: offline, exists() says no, and reading it names the file.
    await expect(offline.exists('tokenizer.json')).resolves.toBe(false);
    await expect(offline.readText('tokenizer.json')).rejects.toThrow(/tiny-random-llama2\/tokenizer\.json: offline mode .* not in the cache/);
    expect(hub.requests).toEqual([]);
  });

  it('reads a pinned commit from the cache with no request, and reuses a blob cached under another revision', async () => {
    await source().readText('config.json');
    hub.requests.length = 0;
    const pinned = source({ revision: COMMIT });
    expect(JSON.parse(await pinned.readText('config.json')).model_type).toBe('llama');
    expect(hub.requests).toEqual([]);
    // A blob cached by etag is linked into a snapshot without downloading it again.
    const cache = new HfCache(hubCacheDir());
    const sha1 = readlinkSync(join(repoDir(), 'snapshots', COMMIT, 'config.json')).split('/').at(-1)!;
    const other = 'f'.repeat(40);
    const linked = await cache.linkBlob(REPO, other, 'config.json', sha1);
    expect(linked?.name).toBe(join(repoDir(), 'snapshots', other, 'config.json'));
    expect(readlinkSync(linked!.name)).toBe(`../../blobs/${sha1}`);
  });

  it('restarts cleanly when resuming against a server that ignores Range', async () => {
    hub.breakNext = { match: '/cdn-lfs/', afterBytes: 100_000 };
    const src = source();
    await expect(src.open('model.safetensors')).rejects.toThrow(/broke off/);
    hub.ignoreRange = true;
    const again = source();
    const ckpt = await readCheckpoint(again);
    expect(ckpt.tensors.size).toBeGreaterThan(0);
    const sha = hub.sha256(REPO, 'model.safetensors');
    expect(createHash('sha256').update(readFileSync(join(repoDir(), 'blobs', sha))).digest('hex')).toBe(sha);
  });

  it('sends the token to gated repos, and says how to get access without it', async () => {
    await expect(source({}, GATED).readText('config.json')).rejects.toThrow(/HTTP 401 \(Access to model gated-org\/stories260K is restricted\.\).*set HF_TOKEN/);
    await expect(source({ token: 'hf_wrong' }, GATED).readText('config.json')).rejects.toThrow(/the token given has no access/);
    const withToken = source({ token: TOKEN }, GATED);
    expect(JSON.parse(await withToken.readText('config.json')).model_type).toBe('llama');
    // The token goes to the hub, never to the CDN the weights are redirected to.
    hub.requests.length = 0;
    await (await withToken.open('model.safetensors')).close?.();
    expect(hub.requests.filter((r) => r.path.includes('/resolve/')).every((r) => r.auth === `Bearer ${TOKEN}`)).toBe(true);
    expect(hub.requests.filter((r) => r.path.startsWith('/cdn-lfs/')).map((r) => r.auth)).toEqual([undefined]);
    // The Node binding reads HF_TOKEN, and then the token file `hf auth login` writes.
    process.env.HF_TOKEN = TOKEN;
    expect(await hubToken()).toBe(TOKEN);
    delete process.env.HF_TOKEN;
    expect(await hubToken()).toBeUndefined();
  });

  it('names unknown repos and revisions, follows a renamed repo, and reads in place without a cache', async () => {
    const inPlace = new HubModelSource(REPO, { endpoint: hub.url, cache: null });
    const ckpt = await readCheckpoint(inPlace);
    expect(ckpt.files).toEqual(['model.safetensors']);
    expect(existsSync(join(home, 'hub'))).toBe(false);
    expect(hub.requests.filter((r) => r.range).length).toBeGreaterThan(0);
    await expect(source({}, 'nobody/nothing').readText('config.json')).rejects.toThrow(/nobody\/nothing: repository not found/);
    await expect(source({ revision: 'v9' }).readText('config.json')).rejects.toThrow(/revision 'v9' not found/);
    await expect(source().readText('../other-org/x/config.json')).rejects.toThrow(/not a plain relative file name/);
    expect(JSON.parse(await source({}, 'old-org/stories260K').readText('config.json')).model_type).toBe('llama');
  });

  it('falls back to the cache when the hub cannot be reached', async () => {
    await source().readText('config.json');
    const down = source({ endpoint: 'http://127.0.0.1:9' }); // discard port: connection refused
    // The ref says which commit; the file is cached under it.
    await expect(down.readText('config.json')).resolves.toContain('"llama"');
    await expect(down.readText('tokenizer.json')).rejects.toThrow(/cannot reach the hub .* not in the cache/);
  });
});

describe('repo ids and environment', () => {
  it('tells repo ids from paths and URLs', () => {
    expect(isRepoId('Qwen/Qwen2.5-0.5B-Instruct')).toBe(true);
    expect(isRepoId('meta-llama/Llama-3.2-1B')).toBe(true);
    for (const s of ['gpt2', './models/x', '/abs/path', 'a/b/c', 'https://x.y/z', 'org/-bad', 'org/a--b', 'org/a..b', '../x']) {
      expect(isRepoId(s), s).toBe(false);
    }
  });

  it('reads HF_HOME, HF_HUB_CACHE and HF_HUB_OFFLINE as huggingface_hub does', () => {
    expect(hubCacheDir({ HF_HOME: '/h' })).toBe('/h/hub');
    expect(hubCacheDir({ HF_HOME: '/h', HF_HUB_CACHE: '/c' })).toBe('/c');
    expect(hubCacheDir({ XDG_CACHE_HOME: '/x' })).toBe('/x/huggingface/hub');
    expect(['1', 'true', 'YES', 'on'].map((v) => hubOffline({ HF_HUB_OFFLINE: v }))).toEqual([true, true, true, true]);
    expect(['0', '', 'no'].map((v) => hubOffline({ HF_HUB_OFFLINE: v }))).toEqual([false, false, false]);
  });
});

/** Python's huggingface_hub, where installed: the cache must be shared with it both ways. */
const python = (() => {
  try {
    execFileSync('python3', ['-c', 'import huggingface_hub'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

describe.skipIf(!python)("the cache shared with Python's huggingface_hub", () => {
  // Asynchronous: the hub answering Python lives in this process.
  const hfHubDownload = async (file: string, offline: boolean) =>
    (await promisify(execFile)('python3', ['-c', `import sys; from huggingface_hub import hf_hub_download; print(hf_hub_download(sys.argv[1], sys.argv[2], local_files_only=${offline ? 'True' : 'False'}))`, REPO, file], {
      env: { ...process.env, HF_HUB_OFFLINE: offline ? '1' : '0', HF_HUB_DISABLE_TELEMETRY: '1', HF_HUB_DISABLE_PROGRESS_BARS: '1' },
      encoding: 'utf8',
      timeout: 60_000,
    })).stdout.trim();

  it('serves our downloads to hf_hub_download offline', async () => {
    const src = new HubModelSource(REPO, { endpoint: hub.url, cache: new HfCache(hubCacheDir()) });
    await src.readText('config.json');
    await (await src.open('model.safetensors')).close?.();
    for (const file of ['config.json', 'model.safetensors']) {
      expect(await hfHubDownload(file, true)).toBe(join(repoDir(), 'snapshots', COMMIT, file));
    }
  });

  it("loads hf_hub_download's downloads offline with no request", async () => {
    for (const file of ['config.json', 'model.safetensors']) await hfHubDownload(file, false);
    hub.requests.length = 0;
    const src = new HubModelSource(REPO, { offline: true, cache: new HfCache(hubCacheDir()) });
    expect(JSON.parse(await src.readText('config.json')).model_type).toBe('llama');
    expect((await readCheckpoint(src)).tensors.size).toBeGreaterThan(0);
    expect(hub.requests).toEqual([]);
  });
});
