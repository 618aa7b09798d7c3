// mtls-ref-java: a Java server that terminates mutual TLS itself from the PKCS#12 keystore and
// truststore mtls_app links (a reference app for docs/applications.md and the targets scenario).
//
// - Files come from the environment mtls_app writes: MTLS_KEYSTORE_FILE, MTLS_KEYSTORE_PASSWORD_FILE,
//   MTLS_TRUSTSTORE_FILE and MTLS_CRL_FILE (optional); PORT (9443).
// - SIGHUP loads all four again; each new handshake uses the newest (the key and trust managers
//   are delegates), so open connections carry on. Files that fail to load are logged and the
//   previous ones kept.
// - Client chains are checked against the CRLs (PKIX with revocation: every CA needs a current CRL).
// - A request on an open connection from a client the current CRLs revoke is refused (495) and
//   the connection closed: a keep-alive connection would otherwise go on serving a client no new
//   handshake accepts.
// - SIGTERM stops accepting and lets in-flight requests finish.
// Run with `java Server.java` (the JDK's source launcher; no build step).

import com.sun.net.httpserver.HttpsConfigurator;
import com.sun.net.httpserver.HttpsExchange;
import com.sun.net.httpserver.HttpsParameters;
import com.sun.net.httpserver.HttpsServer;
import java.io.InputStream;
import java.math.BigInteger;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyStore;
import java.security.Principal;
import java.security.PrivateKey;
import java.security.cert.CRL;
import java.security.cert.CertStore;
import java.security.cert.CertificateFactory;
import java.security.cert.CollectionCertStoreParameters;
import java.security.cert.PKIXBuilderParameters;
import java.security.cert.X509CRL;
import java.security.cert.X509CRLEntry;
import java.security.cert.X509CertSelector;
import java.security.cert.X509Certificate;
import java.util.Collection;
import java.util.HashSet;
import java.util.Set;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicLong;
import javax.net.ssl.CertPathTrustManagerParameters;
import javax.net.ssl.KeyManager;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLParameters;
import javax.net.ssl.TrustManagerFactory;
import javax.net.ssl.X509ExtendedKeyManager;
import javax.net.ssl.X509ExtendedTrustManager;
import sun.misc.Signal;

public class Server {
    /** What one load of the files gives: the managers new handshakes use, and the revoked serials. */
    record Loaded(X509ExtendedKeyManager keys, X509ExtendedTrustManager trust, Set<BigInteger> revoked, String serial, String id) {}

    static volatile Loaded current;
    /** Recent loads by id: a handshake that chose its certificate before a reload signs with that load's key. */
    static final Map<String, Loaded> loads = new ConcurrentHashMap<>();
    static final AtomicLong loadCount = new AtomicLong();

    static Loaded load() throws Exception {
        char[] password = Files.readString(Path.of(System.getenv("MTLS_KEYSTORE_PASSWORD_FILE"))).strip().toCharArray();
        KeyStore keystore = KeyStore.getInstance("PKCS12");
        try (InputStream in = Files.newInputStream(Path.of(System.getenv("MTLS_KEYSTORE_FILE")))) {
            keystore.load(in, password);
        }
        KeyManagerFactory keys = KeyManagerFactory.getInstance("PKIX");
        keys.init(keystore, password);
        KeyStore truststore = KeyStore.getInstance("PKCS12");
        try (InputStream in = Files.newInputStream(Path.of(System.getenv("MTLS_TRUSTSTORE_FILE")))) {
            truststore.load(in, null);  // certificates only: no password protects it
        }
        PKIXBuilderParameters parameters = new PKIXBuilderParameters(truststore, new X509CertSelector());
        Set<BigInteger> revoked = new HashSet<>();
        String crlFile = System.getenv("MTLS_CRL_FILE");
        if (crlFile != null && !crlFile.isEmpty()) {
            Collection<? extends CRL> crls;
            try (InputStream in = Files.newInputStream(Path.of(crlFile))) {
                crls = CertificateFactory.getInstance("X.509").generateCRLs(in);
            }
            parameters.addCertStore(CertStore.getInstance("Collection", new CollectionCertStoreParameters(crls)));
            parameters.setRevocationEnabled(true);
            for (CRL crl : crls) {
                Set<? extends X509CRLEntry> entries = ((X509CRL) crl).getRevokedCertificates();
                if (entries != null) {
                    entries.forEach(entry -> revoked.add(entry.getSerialNumber()));
                }
            }
        } else {
            parameters.setRevocationEnabled(false);
        }
        TrustManagerFactory trust = TrustManagerFactory.getInstance("PKIX");
        trust.init(new CertPathTrustManagerParameters(parameters));
        String alias = keystore.aliases().nextElement();
        String serial = ((X509Certificate) keystore.getCertificate(alias)).getSerialNumber().toString(16).toUpperCase();
        return remember(new Loaded((X509ExtendedKeyManager) keys.getKeyManagers()[0], (X509ExtendedTrustManager) trust.getTrustManagers()[0],
                                   revoked, serial, Long.toString(loadCount.incrementAndGet())));
    }

    static Loaded remember(Loaded loaded) {
        loads.put(loaded.id(), loaded);
        loads.keySet().removeIf(id -> Long.parseLong(id) < Long.parseLong(loaded.id()) - 3);
        return loaded;
    }

    static void reload() {
        try {
            current = load();
            System.out.println("loaded " + System.getenv("MTLS_KEYSTORE_FILE") + ", serial " + current.serial());
        } catch (Exception exc) {
            System.err.println("reload failed, still serving the previous files: " + exc);
        }
    }

    public static void main(String[] args) throws Exception {
        try {
            current = load();
        } catch (Exception exc) {
            System.err.println("cannot start: " + exc);
            System.exit(1);
        }
        System.out.println("loaded " + System.getenv("MTLS_KEYSTORE_FILE") + ", serial " + current.serial());
        SSLContext context = SSLContext.getInstance("TLS");
        context.init(new KeyManager[] {new Keys()}, new javax.net.ssl.TrustManager[] {new Trust()}, null);
        int port = Integer.parseInt(System.getenv().getOrDefault("PORT", "9443"));
        HttpsServer server = HttpsServer.create(new InetSocketAddress(port), 128);
        server.setHttpsConfigurator(new HttpsConfigurator(context) {
            @Override
            public void configure(HttpsParameters https) {
                SSLParameters parameters = getSSLContext().getDefaultSSLParameters();
                parameters.setNeedClientAuth(true);
                parameters.setProtocols(new String[] {"TLSv1.3", "TLSv1.2"});
                https.setSSLParameters(parameters);
            }
        });
        server.createContext("/", exchange -> {
            X509Certificate peer = (X509Certificate) ((HttpsExchange) exchange).getSSLSession().getPeerCertificates()[0];
            boolean refused = current.revoked().contains(peer.getSerialNumber());
            String identity = peer.getSubjectX500Principal().getName().replaceAll("^(?:.*,)?CN=([^,]+).*$", "$1");
            byte[] body = (refused
                ? "{\"error\": \"the client certificate was revoked\"}\n"
                : "{\"client_identity\": \"" + identity + "\", \"client_serial\": \"" + peer.getSerialNumber().toString(16).toUpperCase()
                  + "\", \"app\": \"java\", \"serial\": \"" + current.serial() + "\"}\n").getBytes(StandardCharsets.UTF_8);
            exchange.getResponseHeaders().set("Content-Type", "application/json");
            if (refused) {
                exchange.getResponseHeaders().set("Connection", "close");
            }
            exchange.sendResponseHeaders(refused ? 495 : 200, body.length);
            exchange.getResponseBody().write(body);
            exchange.close();
        });
        server.setExecutor(Executors.newFixedThreadPool(16));
        server.start();
        Signal.handle(new Signal("HUP"), signal -> reload());
        Signal.handle(new Signal("TERM"), signal -> new Thread(() -> {
            server.stop(5);
            System.exit(0);
        }).start());
    }

    /** The current key manager, so each handshake presents the newest certificate. The alias it
     *  chooses names the load, so the chain and the key of one handshake come from the same load
     *  even when a reload happens between them (else the signature would not match the certificate). */
    static final class Keys extends X509ExtendedKeyManager {
        static String tagged(Loaded loaded, String alias) { return alias == null ? null : loaded.id() + "/" + alias; }
        static Loaded loadOf(String alias) { return loads.getOrDefault(alias.substring(0, alias.indexOf('/')), current); }
        static String inner(String alias) { return alias.substring(alias.indexOf('/') + 1); }
        public String[] getClientAliases(String type, Principal[] issuers) { return null; }
        public String chooseClientAlias(String[] type, Principal[] issuers, Socket socket) { return null; }
        public String[] getServerAliases(String type, Principal[] issuers) {
            Loaded loaded = current;
            String[] aliases = loaded.keys().getServerAliases(type, issuers);
            return aliases == null ? null : java.util.Arrays.stream(aliases).map(alias -> tagged(loaded, alias)).toArray(String[]::new);
        }
        public String chooseServerAlias(String type, Principal[] issuers, Socket socket) {
            Loaded loaded = current;
            return tagged(loaded, loaded.keys().chooseServerAlias(type, issuers, socket));
        }
        public String chooseEngineServerAlias(String type, Principal[] issuers, SSLEngine engine) {
            Loaded loaded = current;
            return tagged(loaded, loaded.keys().chooseEngineServerAlias(type, issuers, engine));
        }
        public X509Certificate[] getCertificateChain(String alias) { return loadOf(alias).keys().getCertificateChain(inner(alias)); }
        public PrivateKey getPrivateKey(String alias) { return loadOf(alias).keys().getPrivateKey(inner(alias)); }
    }

    /** The current trust manager, so each handshake checks the newest CAs and CRLs. */
    static final class Trust extends X509ExtendedTrustManager {
        public void checkClientTrusted(X509Certificate[] chain, String type) throws java.security.cert.CertificateException {
            current.trust().checkClientTrusted(chain, type);
        }
        public void checkClientTrusted(X509Certificate[] chain, String type, Socket socket) throws java.security.cert.CertificateException {
            current.trust().checkClientTrusted(chain, type, socket);
        }
        public void checkClientTrusted(X509Certificate[] chain, String type, SSLEngine engine) throws java.security.cert.CertificateException {
            current.trust().checkClientTrusted(chain, type, engine);
        }
        public void checkServerTrusted(X509Certificate[] chain, String type) throws java.security.cert.CertificateException {
            current.trust().checkServerTrusted(chain, type);
        }
        public void checkServerTrusted(X509Certificate[] chain, String type, Socket socket) throws java.security.cert.CertificateException {
            current.trust().checkServerTrusted(chain, type, socket);
        }
        public void checkServerTrusted(X509Certificate[] chain, String type, SSLEngine engine) throws java.security.cert.CertificateException {
            current.trust().checkServerTrusted(chain, type, engine);
        }
        public X509Certificate[] getAcceptedIssuers() { return current.trust().getAcceptedIssuers(); }
    }
}
