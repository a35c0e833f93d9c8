/* types: what the model's value types own. */
#include <stdlib.h>
#include <string.h>

#include "model/types.h"

void er_cmd_fini(struct er_cmd *cmd)
{
        if (!cmd)
                return;
        if (cmd->argv)
                for (size_t i = 0; i < cmd->argc; i++)
                        free(cmd->argv[i]);
        free(cmd->argv);
        free(cmd->cwd);
        memset(cmd, 0, sizeof(*cmd));
}
