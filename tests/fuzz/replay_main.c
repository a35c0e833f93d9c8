/* Replays fuzz inputs through the target without libFuzzer: each argument is
 * a file.  Crashes and sanitizer reports fail the run. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int main(int argc, char **argv)
{
        int n = 0;
        for (int i = 1; i < argc; i++) {
                FILE *f = fopen(argv[i], "rb");
                uint8_t *buf;
                long len;
                if (!f) {
                        perror(argv[i]);
                        return 1;
                }
                if (fseek(f, 0, SEEK_END) || (len = ftell(f)) < 0 || fseek(f, 0, SEEK_SET)) {
                        perror(argv[i]);
                        return 1;
                }
                buf = malloc((size_t)len + 1);
                if (!buf || fread(buf, 1, (size_t)len, f) != (size_t)len) {
                        fprintf(stderr, "%s: cannot read\n", argv[i]);
                        return 1;
                }
                fclose(f);
                LLVMFuzzerTestOneInput(buf, (size_t)len);
                free(buf);
                n++;
        }
        printf("replayed %d inputs\n", n);
        return n > 0 ? 0 : 1;
}
