// mtls-ref-java client: calls an mTLS URL with the PKCS#12 keystore and truststore mtls_app
// links, the way a Java service calls another (a reference client for docs/applications.md and
// the load of the targets scenario).
//
//   java Client.java URL OUT [--seconds 300] [--stop-file PATH] [--workers 2]
//
// - Files come from MTLS_KEYSTORE_FILE, MTLS_KEYSTORE_PASSWORD_FILE and MTLS_TRUSTSTORE_FILE.
// - It loads them again when the keystore changes (a rotation switches the generation its links
//   point to), keeping the previous ones while a new pair does not load; each new handshake uses
//   the newest, connections open before carry on.
// - The server's name is verified (HTTPS endpoint identification). A request that fails on a
//   kept-alive connection is tried once more on a new one, as HTTP clients do for an idempotent GET.
// - Stops after --seconds or when the stop file appears; writes {"sent", "failed", "retried",
//   "reloads", "seconds", "errors"} as JSON to OUT (as extensions/demo/files/load.py does).

import java.io.InputStream;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyStore;
import java.security.Principal;
import java.security.PrivateKey;
import java.security.cert.CertificateException;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import javax.net.ssl.KeyManager;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.TrustManager;
import javax.net.ssl.TrustManagerFactory;
import javax.net.ssl.X509ExtendedKeyManager;
import javax.net.ssl.X509ExtendedTrustManager;

public class Client {
    record Loaded(X509ExtendedKeyManager keys, X509ExtendedTrustManager trust, String stamp) {}

    static volatile Loaded current;
    /** Recent loads by stamp: a handshake that chose its certificate before a reload signs with that load's key. */
    static final Map<String, Loaded> loads = new ConcurrentHashMap<>();
    static final AtomicLong sent = new AtomicLong(), failed = new AtomicLong(), retried = new AtomicLong(), reloads = new AtomicLong();
    static final Map<String, Long> errors = new ConcurrentHashMap<>();

    static String stamp() throws Exception {
        Path keystore = Path.of(System.getenv("MTLS_KEYSTORE_FILE")).toRealPath();
        return keystore + "@" + Files.getLastModifiedTime(keystore).toMillis();
    }

    static Loaded load() throws Exception {
        String stamp = stamp();
        char[] password = Files.readString(Path.of(System.getenv("MTLS_KEYSTORE_PASSWORD_FILE"))).strip().toCharArray();
        KeyStore keystore = KeyStore.getInstance("PKCS12");
        try (InputStream in = Files.newInputStream(Path.of(System.getenv("MTLS_KEYSTORE_FILE")))) {
            keystore.load(in, password);
        }
        KeyManagerFactory keys = KeyManagerFactory.getInstance("PKIX");
        keys.init(keystore, password);
        KeyStore truststore = KeyStore.getInstance("PKCS12");
        try (InputStream in = Files.newInputStream(Path.of(System.getenv("MTLS_TRUSTSTORE_FILE")))) {
            truststore.load(in, null);
        }
        TrustManagerFactory trust = TrustManagerFactory.getInstance("PKIX");
        trust.init(truststore);
        Loaded loaded = new Loaded((X509ExtendedKeyManager) keys.getKeyManagers()[0], (X509ExtendedTrustManager) trust.getTrustManagers()[0], stamp);
        loads.put(stamp, loaded);
        return loaded;
    }

    static synchronized void reloadIfChanged() {
        try {
            if (!stamp().equals(current.stamp())) {
                current = load();
                reloads.incrementAndGet();
            }
        } catch (Exception exc) {
            // a generation being switched, or a pair that does not load: keep the previous one
        }
    }

    public static void main(String[] args) throws Exception {
        URI url = URI.create(args[0]);
        Path out = Path.of(args[1]);
        double seconds = 300;
        Path stopFile = Path.of("/run/mtls-load.stop");
        int workers = 2;
        for (int i = 2; i + 1 < args.length; i += 2) {
            switch (args[i]) {
                case "--seconds" -> seconds = Double.parseDouble(args[i + 1]);
                case "--stop-file" -> stopFile = Path.of(args[i + 1]);
                case "--workers" -> workers = Integer.parseInt(args[i + 1]);
                default -> throw new IllegalArgumentException("unknown option " + args[i]);
            }
        }
        current = load();
        SSLContext context = SSLContext.getInstance("TLS");
        context.init(new KeyManager[] {new Keys()}, new TrustManager[] {new Trust()}, null);
        HttpClient kept = HttpClient.newBuilder().sslContext(context).connectTimeout(Duration.ofSeconds(5)).build();
        long start = System.nanoTime();
        long deadline = start + (long) (seconds * 1e9);
        final Path stop = stopFile;
        List<Thread> threads = new java.util.ArrayList<>();
        for (int w = 0; w < workers; w++) {
            Thread thread = new Thread(() -> {
                HttpRequest request = HttpRequest.newBuilder(url).timeout(Duration.ofSeconds(5)).GET().build();
                while (System.nanoTime() < deadline && !Files.exists(stop)) {
                    reloadIfChanged();
                    sent.incrementAndGet();
                    if (!call(kept, request)) {
                        // a kept-alive connection closed under the request: once more, on a new client
                        HttpClient fresh = HttpClient.newBuilder().sslContext(context).connectTimeout(Duration.ofSeconds(5)).build();
                        if (call(fresh, request)) {
                            retried.incrementAndGet();
                        } else {
                            failed.incrementAndGet();
                        }
                    }
                    try {
                        Thread.sleep(20);
                    } catch (InterruptedException exc) {
                        return;
                    }
                }
            });
            thread.start();
            threads.add(thread);
        }
        for (Thread thread : threads) {
            thread.join();
        }
        String elapsed = String.format(java.util.Locale.ROOT, "%.1f", (System.nanoTime() - start) / 1e9);
        StringBuilder json = new StringBuilder("{\"sent\": " + sent + ", \"failed\": " + failed + ", \"retried\": " + retried
                                               + ", \"reloads\": " + reloads + ", \"seconds\": " + elapsed + ", \"errors\": {");
        String separator = "";
        for (Map.Entry<String, Long> entry : errors.entrySet()) {
            json.append(separator).append('"').append(entry.getKey().replace("\\", "\\\\").replace("\"", "'")).append("\": ").append(entry.getValue());
            separator = ", ";
        }
        Files.writeString(out, json.append("}}\n").toString());
    }

    static boolean call(HttpClient client, HttpRequest request) {
        try {
            HttpResponse<String> response = client.send(request, HttpResponse.BodyHandlers.ofString());
            if (response.statusCode() == 200) {
                return true;
            }
            errors.merge("HTTP " + response.statusCode(), 1L, Long::sum);
        } catch (Exception exc) {
            errors.merge(exc.getClass().getSimpleName() + ": " + exc.getMessage(), 1L, Long::sum);
        }
        return false;
    }

    /** The current key manager. The alias it chooses names the load, so a handshake's chain and key
     *  come from the same load even when a reload happens between them. */
    static final class Keys extends X509ExtendedKeyManager {
        static String tagged(Loaded loaded, String alias) { return alias == null ? null : loaded.stamp() + "|" + alias; }
        static Loaded loadOf(String alias) { return loads.getOrDefault(alias.substring(0, alias.lastIndexOf('|')), current); }
        static String inner(String alias) { return alias.substring(alias.lastIndexOf('|') + 1); }
        public String[] getClientAliases(String type, Principal[] issuers) {
            Loaded loaded = current;
            String[] aliases = loaded.keys().getClientAliases(type, issuers);
            return aliases == null ? null : java.util.Arrays.stream(aliases).map(alias -> tagged(loaded, alias)).toArray(String[]::new);
        }
        public String chooseClientAlias(String[] type, Principal[] issuers, Socket socket) {
            Loaded loaded = current;
            return tagged(loaded, loaded.keys().chooseClientAlias(type, issuers, socket));
        }
        public String chooseEngineClientAlias(String[] type, Principal[] issuers, SSLEngine engine) {
            Loaded loaded = current;
            return tagged(loaded, loaded.keys().chooseEngineClientAlias(type, issuers, engine));
        }
        public String[] getServerAliases(String type, Principal[] issuers) { return null; }
        public String chooseServerAlias(String type, Principal[] issuers, Socket socket) { return null; }
        public X509Certificate[] getCertificateChain(String alias) { return loadOf(alias).keys().getCertificateChain(inner(alias)); }
        public PrivateKey getPrivateKey(String alias) { return loadOf(alias).keys().getPrivateKey(inner(alias)); }
    }

    static final class Trust extends X509ExtendedTrustManager {
        public void checkClientTrusted(X509Certificate[] chain, String type) throws CertificateException { current.trust().checkClientTrusted(chain, type); }
        public void checkClientTrusted(X509Certificate[] chain, String type, Socket socket) throws CertificateException {
            current.trust().checkClientTrusted(chain, type, socket);
        }
        public void checkClientTrusted(X509Certificate[] chain, String type, SSLEngine engine) throws CertificateException {
            current.trust().checkClientTrusted(chain, type, engine);
        }
        public void checkServerTrusted(X509Certificate[] chain, String type) throws CertificateException { current.trust().checkServerTrusted(chain, type); }
        public void checkServerTrusted(X509Certificate[] chain, String type, Socket socket) throws CertificateException {
            current.trust().checkServerTrusted(chain, type, socket);
        }
        public void checkServerTrusted(X509Certificate[] chain, String type, SSLEngine engine) throws CertificateException {
            current.trust().checkServerTrusted(chain, type, engine);
        }
        public X509Certificate[] getAcceptedIssuers() { return current.trust().getAcceptedIssuers(); }
    }
}
