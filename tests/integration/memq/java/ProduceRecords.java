import com.pinterest.memq.client.commons.Compression;
import com.pinterest.memq.client.commons.serde.ByteArraySerializer;
import com.pinterest.memq.client.producer.MemqWriteResult;
import com.pinterest.memq.client.producer2.MemqProducer;
import com.pinterest.memq.commons.MessageId;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

public class ProduceRecords {
  public static void main(String[] args) throws Exception {
    String bootstrap = args[0];
    String topic = args[1];
    int count = Integer.parseInt(args[2]);
    Compression compression = Compression.valueOf(args[3]);
    // A cold JVM on a busy machine can miss the default 500 ms for connecting and the first metadata answer.
    Properties network = new Properties();
    network.setProperty("connectTimeoutMs", "10000");
    MemqProducer<byte[], byte[]> producer = new MemqProducer.Builder<byte[], byte[]>()
        .cluster("it").topic(topic).bootstrapServers(bootstrap)
        .keySerializer(new ByteArraySerializer()).valueSerializer(new ByteArraySerializer())
        .networkProperties(network).compression(compression).lingerMs(50).maxPayloadBytes(64 * 1024)
        .sendRequestTimeout(30000)
        .build();
    List<Future<MemqWriteResult>> futures = new ArrayList<>();
    for (int i = 0; i < count; i++) {
      Map<String, byte[]> headers = new HashMap<>();
      headers.put("index", Integer.toString(i).getBytes(StandardCharsets.UTF_8));
      headers.put("kind", "java".getBytes(StandardCharsets.UTF_8));
      byte[] key = ("key-" + i).getBytes(StandardCharsets.UTF_8);
      StringBuilder value = new StringBuilder("value-" + i + "-");
      for (int j = 0; j < i % 50; j++) value.append((char) ('a' + j % 26));
      MessageId id = new MessageId(String.format("id%06d", i).getBytes(StandardCharsets.UTF_8));
      byte[] bytes = value.toString().getBytes(StandardCharsets.UTF_8);
      futures.add(producer.write(id, headers, key, bytes, 1700000000000L + i));
    }
    producer.flush();
    int ok = 0;
    for (Future<MemqWriteResult> f : futures) {
      f.get(60, TimeUnit.SECONDS);
      ok++;
    }
    producer.close();
    System.out.println("ACKED " + ok);
  }
}
